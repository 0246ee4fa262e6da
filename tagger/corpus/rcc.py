"""Read files out of a Qt binary resource bundle (``.rcc``), the way GCompris packs its sounds.

Layout (Qt's ``rcc`` format, versions 1-3): a 20-byte big-endian header ``qres``, version, and the
offsets of the tree, data and names sections. Tree nodes (14 bytes in version 1, 22 after) hold a
name offset, flags (2 = directory, 1 = zlib-compressed, 4 = zstd-compressed) and either the range
of child nodes or the offset of the file's data. A name is a 16-bit length, a 32-bit hash and
UTF-16BE characters; a file's data is a 32-bit size and the bytes (zlib data starts with the
4-byte uncompressed size, as ``qCompress`` writes it).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from .packages import CorpusError

DIRECTORY, ZLIB, ZSTD = 2, 1, 4


def rcc_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(path inside the bundle, contents)`` for every file of the bundle, in tree order."""
    blob = path.read_bytes()
    if blob[:4] != b"qres" or len(blob) < 20:
        raise CorpusError(f"{path}: not a Qt resource bundle")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise CorpusError(f"{path}: Qt resource format version {version} is not supported")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6
        return blob[start:start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, base)
        name = name_at(name_offset) if index else ""
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", blob, base + 6)
            inner = f"{prefix}{name}/" if index else ""
            for child in range(first, first + count):
                yield from walk(child, inner)
            return
        (offset,) = struct.unpack_from(">I", blob, base + 10)
        (size,) = struct.unpack_from(">I", blob, data + offset)
        raw = blob[data + offset + 4:data + offset + 4 + size]
        if flags & ZSTD:
            raise CorpusError(f"{path}: {prefix}{name} is zstd-compressed, which this reader does not handle")
        yield prefix + name, zlib.decompress(raw[4:]) if flags & ZLIB else raw

    try:
        yield from walk(0, "")
    except (struct.error, zlib.error, UnicodeDecodeError) as error:
        raise CorpusError(f"{path}: damaged Qt resource bundle ({error})") from None

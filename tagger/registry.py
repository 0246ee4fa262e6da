"""Registry of the official PaSST checkpoints and a verified, cached downloader.

The checkpoints are GitHub release assets of https://github.com/kkoutini/PaSST. Each
entry records what is known about the file: its SHA-256 and size are filled in only
where they were found published; otherwise they are ``None`` and the downloader falls
back to trust on first use (see :func:`download`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tagger.atomic import atomic_write
from tagger.errors import DownloadError

__all__ = [
    "DEFAULT_REMOTE_MODEL",
    "MODELS",
    "RemoteModel",
    "cache_dir",
    "download",
]

_RELEASES = "https://github.com/kkoutini/PaSST/releases/download"
_CHUNK = 1 << 20
_USER_AGENT = "tagger (PaSST audio tagger; +https://github.com/kkoutini/PaSST)"


@dataclass(frozen=True)
class RemoteModel:
    """A downloadable checkpoint.

    ``sha256`` (lower-case hex) and ``size`` (bytes) are ``None`` when unknown.
    ``stride`` is the patch stride the model was trained with (patch size is 16 for all);
    ``context_seconds`` is the length of audio the model sees at once.
    """

    name: str
    url: str
    sha256: str | None
    size: int | None
    description: str
    stride: int
    context_seconds: float

    @property
    def filename(self) -> str:
        """The file name the checkpoint is cached under (the last part of its URL)."""
        return Path(urllib.parse.urlsplit(self.url).path).name


# Sources: URLs, strides and input lengths from `default_cfgs` in kkoutini/PaSST models/passt.py
# and kkoutini/passt_hear21 hear21passt/models/passt.py (input_size 998 frames = 10 s,
# 2000 = 20 s, 3000 = 30 s at 100 frames/s). The SHA-256 and size of the default model and
# the sizes of the 20 s / 30 s models come from third-party projects that pin these assets;
# nothing else has a published hash or size, so those entries use trust on first use.
_ENTRIES = (
    RemoteModel(
        name="passt-s-swa",
        url=f"{_RELEASES}/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
        sha256="302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c",
        size=344_665_734,
        description="PaSST-S, AudioSet, structured Patchout + SWA, stride 10 (mAP .476; the reference model)",
        stride=10,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-s-kd",
        url=f"{_RELEASES}/v.0.0.9/passt-s-kd-ap.486.pt",
        sha256=None,
        size=None,
        description="PaSST-S, AudioSet, trained with knowledge distillation, stride 10 (mAP .486; most accurate)",
        stride=10,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-s-s12",
        url=f"{_RELEASES}/v0.0.2-audioset/passt-s-f128-p16-s12-ap.473-swa.pt",
        sha256=None,
        size=None,
        description="PaSST-S, AudioSet, SWA, patch stride 12 (mAP .473; fewer patches, faster)",
        stride=12,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-s-s14",
        url=f"{_RELEASES}/v0.0.2-audioset/passt-s-f128-p16-s14-ap.471-swa.pt",
        sha256=None,
        size=None,
        description="PaSST-S, AudioSet, SWA, patch stride 14 (mAP .471; faster still)",
        stride=14,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-s-s16",
        url=f"{_RELEASES}/v0.0.2-audioset/passt-s-f128-p16-s16-ap.473-swa.pt",
        sha256=None,
        size=None,
        description="PaSST-S, AudioSet, SWA, patch stride 16, no patch overlap (mAP .473; fastest)",
        stride=16,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-u600-s16",
        url=f"{_RELEASES}/v.0.0.7-audioset/passt-u600-f128-p16-s16-ap.460.pt",
        sha256=None,
        size=None,
        description="PaSST, AudioSet, 'u600' release (unstructured Patchout), stride 16, no overlap (mAP .460)",
        stride=16,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-b-s16",
        url=f"{_RELEASES}/v.0.0.7-audioset/passt-b-f128-p16-s16-ap.459.pt",
        sha256=None,
        size=None,
        description="PaSST, AudioSet, 'b' release, stride 16, no overlap (mAP .459)",
        stride=16,
        context_seconds=10.0,
    ),
    RemoteModel(
        name="passt-s-20s",
        url=f"{_RELEASES}/v0.0.5/passt-s-f128-20sec-p16-s10-ap.474-swa.pt",
        sha256=None,
        size=344_975_942,
        description="PaSST-S, AudioSet, SWA, stride 10, 20-second time encodings (mAP .474)",
        stride=10,
        context_seconds=20.0,
    ),
    RemoteModel(
        name="passt-s-30s",
        url=f"{_RELEASES}/v0.0.5/passt-s-f128-30sec-p16-s10-ap.473-swa.pt",
        sha256=None,
        size=345_283_206,
        description="PaSST-S, AudioSet, SWA, stride 10, 30-second time encodings (mAP .473)",
        stride=10,
        context_seconds=30.0,
    ),
)

MODELS: dict[str, RemoteModel] = {entry.name: entry for entry in _ENTRIES}
DEFAULT_REMOTE_MODEL = "passt-s-swa"  # the official model to reach for first (listed first)


def cache_dir() -> Path:
    """Where downloaded checkpoints live.

    ``$TAGGER_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/tagger``, else ``~/.cache/tagger``.
    Empty variables count as unset.
    """
    explicit = os.environ.get("TAGGER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "tagger"
    return Path.home() / ".cache" / "tagger"


def download(
    model: RemoteModel,
    root: Path | None = None,
    show_progress: bool = True,
    *,
    timeout: float = 30.0,
) -> Path:
    """Return the local path of ``model``'s checkpoint, downloading it into the cache if needed.

    A cached file is used without touching the network when it matches the known size and
    SHA-256. Otherwise the file is streamed into a temporary file in ``root`` (default
    :func:`cache_dir`), hashed on the way, checked, fsynced and atomically renamed into place;
    a failed or interrupted download (Ctrl-C included) leaves nothing behind. A cached file that
    no longer matches is downloaded again.

    Trust on first use: when the registry has no SHA-256 for the model, the hash computed on
    the first download (or the first time a cached file is seen) is written next to the file as
    ``<file>.sha256``, and later uses, as well as later downloads, are verified against it. If
    the upstream file was replaced on purpose, delete that ``.sha256`` file.

    ``timeout`` is the socket timeout, in seconds, for connecting and for each read.
    Raises :class:`DownloadError` with a one-line message on any failure.
    """
    root = Path(root) if root is not None else cache_dir()
    target = root / model.filename
    record = target.with_name(target.name + ".sha256")

    expected = model.sha256.lower() if model.sha256 else _read_record(record)
    if target.is_file():
        if _matches(target, model.size, expected):
            if expected is None:
                _write_record(record, sha256_of(target))
            return target
        print(
            f"warning: cached {target} does not match its expected size/SHA-256; downloading it again",
            file=sys.stderr,
        )

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot create the cache folder {root}: {_reason(error)}") from None

    digest = _fetch(model, target, expected, show_progress, timeout)
    if model.sha256 is None and expected is None:
        _write_record(record, digest)
    return target


def _fetch(model: RemoteModel, target: Path, expected: str | None, show_progress: bool,
           timeout: float) -> str:
    """Stream ``model.url`` into ``target`` via a temporary file; return the file's SHA-256."""
    request = urllib.request.Request(model.url, headers={"User-Agent": _USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise DownloadError(_unreachable(model, error)) from None

    with response:
        header = response.headers.get("Content-Length")
        announced = int(header) if header and header.isdigit() else None
        hasher = hashlib.sha256()
        received = 0
        # atomic_write deletes the partial file on any error or interrupt, and renames it into
        # place only when the block ends normally, after every check below has passed.
        with atomic_write(target) as out, _progress(show_progress) as progress:
            task = progress.add_task(model.name, total=model.size or announced)
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (http.client.HTTPException, OSError) as error:
                    raise DownloadError(_unreachable(model, error)) from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as error:
                    raise DownloadError(f"cannot write {target}: {_reason(error)}") from None
                hasher.update(chunk)
                received += len(chunk)
                progress.update(task, advance=len(chunk))
            digest = hasher.hexdigest()
            if announced is not None and received != announced:
                raise DownloadError(
                    f"download of {model.name} from {model.url} was cut short: "
                    f"got {received} of {announced} bytes; try again"
                )
            if model.size is not None and received != model.size:
                raise DownloadError(
                    f"downloaded {model.name} has the wrong size: expected {model.size} bytes, "
                    f"got {received}; the download was deleted"
                )
            if expected is not None and digest != expected:
                raise DownloadError(_mismatch(model, target, expected, digest))
    return digest


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show,
    )


def _matches(path: Path, size: int | None, sha256: str | None) -> bool:
    if size is not None and path.stat().st_size != size:
        return False
    return sha256 is None or sha256_of(path) == sha256


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _read_record(record: Path) -> str | None:
    """The hash stored by trust on first use (``sha256sum`` format), or ``None``."""
    try:
        text = record.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise DownloadError(f"cannot read {record}: {error}; delete it to trust the next download") from None
    fields = text.split()
    if not fields or len(fields[0]) != 64 or any(c not in "0123456789abcdef" for c in fields[0].lower()):
        raise DownloadError(f"{record} does not hold a SHA-256; delete it to trust the next download")
    return fields[0].lower()


def _write_record(record: Path, digest: str) -> None:
    with atomic_write(record, "w") as out:
        out.write(f"{digest}  {record.name.removesuffix('.sha256')}\n")


def _mismatch(model: RemoteModel, target: Path, expected: str, got: str) -> str:
    if model.sha256 is not None:
        return (f"SHA-256 mismatch for {model.name}: expected {expected}, got {got}; "
                f"the download was deleted")
    return (f"SHA-256 mismatch for {model.name}: expected {expected} (recorded in {target}.sha256 "
            f"on first download), got {got}; the download was deleted "
            f"(delete the .sha256 file if the upstream file changed on purpose)")


def _reason(error: BaseException) -> str:
    """A short description of an I/O error, without errno noise."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}".rstrip()
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return _reason(reason) if isinstance(reason, BaseException) else str(reason)
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _unreachable(model: RemoteModel, error: BaseException) -> str:
    hint = "" if isinstance(error, urllib.error.HTTPError) else " (are you offline?)"
    return (f"cannot download {model.name} from {model.url}: {_reason(error)}{hint}; "
            f"download it yourself and pass its path with --model")

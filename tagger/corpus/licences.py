"""Per-file licences from a Debian package's machine-readable (DEP-5) copyright file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"

# DEP-5 `Files:` patterns name paths in the upstream source tree, not where the package installs
# them: this maps each package's installed prefix to its source prefix (checked by hand against
# each copyright file). A path is matched both as installed and as mapped; matching any suffix
# instead would be wrong (hedgewars' `hedgewars/*` stanza is its Pascal sources, not its data).
SOURCE_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "hedgewars-data": (("usr/share/games/hedgewars/", "share/hedgewars/"),),
    "lugaru-data": (("usr/share/games/lugaru/", "Data/"),),
    "scorched3d-data": (("usr/share/games/scorched3d/", ""),),
    "ufoai-sound": (("usr/share/games/ufoai/", ""),),
    "lomiri-sounds": (("usr/", ""),),
    "sound-theme-freedesktop": (("usr/share/sounds/freedesktop/", ""),),
    # Upstream ships one tarball per language; the copyright names them `ru-*`, `fr-*`, ...
    "asterisk-core-sounds-ru-wav": (("usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/", "ru-sounds/"),),
    # Upstream's data/ tree (the copyright's `data/projects/demos/...` are usr/share/lmms/projects/demos/...).
    "lmms-common": (("usr/share/lmms/", "data/"),),
    # One stanza per sample: `etc/samples/ambi_choir.flac` is usr/share/sonic-pi/samples/ambi_choir.flac.
    "sonic-pi-samples": (("usr/share/sonic-pi/samples/", "etc/samples/"),),
    "hydrogen-data": (("usr/share/hydrogen/data/", "data/"),),
    "bucklespring-data": (("usr/share/buckle/wav/", "wav/"),),
    # The copyright's `Media/*` (CC-BY-SA-3.0) is usr/share/scratch/Media/...
    "scratch": (("usr/share/scratch/", ""),),
}

# Installed directories unpacked from one upstream archive that the copyright file names instead
# of its members: every file under the directory gets the archive's path as another candidate.
SOURCE_ARCHIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "hydrogen-drumkits-effects": (
        ("usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums/",
         "drumkits/belofilms_GuitarStrums.h2drumkit"),
    ),
}

# Packages whose copyright file is not machine-readable (no DEP-5 `Files:` stanzas): the one
# licence it states for the whole package, read by hand.
WHOLE_PACKAGE_LICENCES: dict[str, str] = {
    # "You are free to distribute this software under the terms of the GNU General Public
    # License." (no version given)
    "searchandrescue-data": "GPL",
    # Packages surveyed 2026-12-03 whose copyright files are not DEP-5, read by hand.
    "fretsonfire-songs-muldjord": "CC-BY-SA-3.0",
    "fretsonfire-songs-sectoid": "Expat",
    "asterisk-moh-opsound-wav": "CC-BY-SA-3.0",
    "circuslinux-data": "GPL-2+",
    "clanlib-doc": "Zlib",
    "dopewars-data": "GPL-2+",
    "xemacs21-basesupport": "GPL",
    # Zlib for the game; each replaced sound's own licence is in README-REPLACEMENTS (the ones used:
    # WTFPL, public domain, GPL-2+ or CC-BY-SA-3.0+, CC-BY-3.0).
    "freedink-data": "Zlib (replaced sounds: see README-REPLACEMENTS)",
    "plee-the-bear-data": "GPL-2+ (sounds), CC-BY-SA-3.0 (music)",
}


@dataclass(frozen=True)
class Stanza:
    """One `Files:` paragraph: its glob patterns and the short name of its licence."""

    patterns: tuple[re.Pattern[str], ...]
    licence: str


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """DEP-5 globbing: `*` matches any characters including `/`, `?` exactly one character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts))


def _paragraphs(text: str) -> list[dict[str, str]]:
    """Split a DEP-5 file into paragraphs of field name -> value (continuation lines joined)."""
    paragraphs: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                paragraphs.append(fields)
            fields, name = {}, ""
        elif line[0] in " \t":
            if name:
                fields[name] += "\n" + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            fields[name] = value.strip()
    if fields:
        paragraphs.append(fields)
    return paragraphs


def parse_dep5(text: str) -> list[Stanza]:
    """The `Files:` stanzas of a DEP-5 copyright file, in file order."""
    stanzas = []
    for fields in _paragraphs(text):
        if "Files" not in fields or "License" not in fields:
            continue
        patterns = tuple(_glob_regex(p) for p in fields["Files"].split())
        licence = fields["License"].split("\n", 1)[0].strip() or UNKNOWN
        if patterns:
            stanzas.append(Stanza(patterns, licence))
    return stanzas


def _candidate_paths(package: str, paths: list[str]) -> list[str]:
    """Each installed path and its source-tree path."""
    candidates = list(paths)
    for installed, source in SOURCE_PREFIXES.get(package, ()):
        candidates += [source + p[len(installed):] for p in paths if p.startswith(installed)]
    for installed, archive in SOURCE_ARCHIVES.get(package, ()):
        candidates += [archive for p in paths if p.startswith(installed)]
    return candidates


def licence_for(stanzas: list[Stanza], package: str, paths: list[str]) -> str:
    """The licence of the last stanza matching any of ``paths`` (DEP-5: later stanzas win).

    ``paths`` are installed paths relative to the package root; pass several when a file has
    more than one name (a member of an archive: its own path, then the archive's).
    """
    candidates = _candidate_paths(package, paths)
    found = UNKNOWN
    for stanza in stanzas:
        if any(p.fullmatch(c) for p in stanza.patterns for c in candidates):
            found = stanza.licence
    return found


def package_stanzas(package_root: Path, package: str) -> list[Stanza]:
    """The stanzas of ``usr/share/doc/<package>/copyright`` under ``package_root`` (none if absent);
    for a package of WHOLE_PACKAGE_LICENCES, one stanza covering every file."""
    path = package_root / "usr/share/doc" / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if package in WHOLE_PACKAGE_LICENCES:
        return [Stanza((re.compile(".*"),), WHOLE_PACKAGE_LICENCES[package])]
    return parse_dep5(text)


def package_licence(packages_dir: Path, package: str, paths: Iterable[str]) -> str:
    """The licence of installed files of ``package`` (extracted under ``packages_dir/<package>``).

    Each path is looked up on its own; their distinct licences are joined, sorted, by ` AND `.
    Raises ValueError when no stanza covers one of them (or the copyright file is missing).
    """
    stanzas = package_stanzas(packages_dir / package, package)
    licences = set()
    for path in paths:
        licence = licence_for(stanzas, package, [path])
        if licence == UNKNOWN:
            raise ValueError(f"{package}: no copyright stanza covers {path}")
        licences.add(licence)
    return " AND ".join(sorted(licences))

"""The Debian packages the corpus is built from: fetched with ``apt-get download``, unpacked with ``dpkg -x``.

Nothing is installed: each ``.deb`` is downloaded into ``CACHE/debs`` and unpacked into
``CACHE/pkgs/<package>``, so a rebuild reuses both. The renderers need two programs that are installed
(``fluidsynth`` and ``espeak-ng``); :func:`check_tools` says so in one line when they are missing.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from tagger.errors import TaggerError

# Every package whose files end up in the corpus (any Debian package but the reserved ones below).
PACKAGES: tuple[str, ...] = (
    "asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav", "asterisk-core-sounds-ru-wav",
    "hedgewars-data", "btanks-data", "ufoai-sound", "scorched3d-data", "openarena-data",
    "lugaru-data", "etw-data", "lincity-ng-data", "megaglest-data", "bucklespring-data",
    "fluid-soundfont-gm", "minuet-data", "opl3-soundfont", "lmms-common", "sonic-pi-samples", "hydrogen-data",
    "lomiri-sounds", "sound-theme-freedesktop", "0ad-data", "qabcs-data", "scratch",
    "searchandrescue-data", "hydrogen-drumkits-effects", "torcs-data", "flare-game", "warzone2100-data",
    "flightgear-data-base", "denemo-data",
    # surveyed 2026-12-03 (catalog.py: vehicles and crowds, ambiences, people and animals, music stems)
    "sumo-tools", "trophy-data", "micropolis-data", "libreoffice-common", "dopewars-data",
    "dustracing2d-data", "trigger-rally-data", "ri-li-data", "bzflag-data", "circuslinux-data",
    "netpanzer-data", "redeclipse-data", "freedink-data", "heroes-sound-effects", "tuxfootball",
    "colobot-common-sounds", "cube2-data", "plee-the-bear-data", "supertux-data", "freedroidrpg-data",
    "clanlib-doc", "gnome-shell-pomodoro-data", "xemacs21-basesupport", "open-invaders-data",
    "pekka-kana-2-data", "unknown-horizons", "castle-game-engine-doc", "berusky2-data",
    "fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid", "asterisk-moh-opsound-wav", "python3-pyglet",
)
TOOLS: dict[str, str] = {"fluidsynth": "fluidsynth", "espeak-ng": "espeak-ng"}  # program -> apt package


class CorpusError(TaggerError):
    """The corpus cannot be built (missing tool, failed download, bad folder)."""


# Packages reserved for blind evaluation (shared/notes/offline-corpus.md, decided 2026-12-02): never a
# training source. Patterns (fnmatch) cover renames, forks, mods and sibling packages of each one; they
# are wider than the list where its wording is ("every wesnoth data package", "every festival or
# festvox voice of the CMU ARCTIC speakers": all festvox voices are left out). The project's own
# independent check reads some of these packages, for evaluation only (`fetch_packages(...,
# evaluation_only=True)`).
RESERVED_FOR_BLIND_EVALUATION: tuple[str, ...] = (
    "timgm6mb-soundfont", "freepats", "timidity", "timidity-*", "avldrums.lv2*",
    "gcompris*", "klettres*", "ktuberling*", "tuxpaint*", "openttd-opensfx", "openttd-*sfx*",
    "minetest*", "luanti*", "mineclone*", "voxelibre*", "freeciv*", "freedoom", "7kaa*", "simutrans*",
    "frozen-bubble*", "oxygen-sounds", "gnome-audio", "deepin-sound-theme", "sound-icons",
    "wesnoth*", "flite*", "libflite*", "festvox-*", "widelands*", "warmux*", "csoundqt-examples",
    "supertuxkart*", "alsa-utils",
)


def reserved_pattern(package: str) -> str | None:
    """The reservation pattern a package matches, or None when it may be a training source."""
    return next((p for p in RESERVED_FOR_BLIND_EVALUATION if fnmatch.fnmatchcase(package, p)), None)


def check_training_sources(packages: tuple[str, ...] | list[str]) -> None:
    """Refuse, before anything is downloaded, a training source reserved for blind evaluation."""
    reserved = [(package, pattern) for package in packages if (pattern := reserved_pattern(package))]
    if reserved:
        package, pattern = reserved[0]
        raise CorpusError(f"{package} is reserved for blind evaluation ({pattern}) and may never be a "
                          "training source")


def check_tools() -> None:
    missing = [package for program, package in TOOLS.items() if shutil.which(program) is None]
    if missing:
        raise CorpusError(f"the corpus renderers need {', '.join(missing)}: "
                          f"apt-get install --no-install-recommends {' '.join(missing)}")


def _deb_of(debs: Path, package: str) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def fetch_packages(cache: Path, packages: tuple[str, ...] = PACKAGES,
                   report: Callable[[str], None] = lambda message: None,
                   evaluation_only: bool = False) -> Path:
    """Download (once) and unpack (once) every package; returns the folder of unpacked trees.

    Training sources (the default) reserved for blind evaluation are refused before any download."""
    if not evaluation_only:
        check_training_sources(packages)
    debs, trees = cache / "debs", cache / "pkgs"
    debs.mkdir(parents=True, exist_ok=True)
    trees.mkdir(parents=True, exist_ok=True)
    wanted = [p for p in packages if _deb_of(debs, p) is None]
    if wanted:
        report(f"apt-get download {len(wanted)} package(s)")
        _run(["apt-get", "download", *wanted], debs, "apt-get download")
    for package in packages:
        tree = trees / package
        if (tree / ".unpacked").exists():
            continue
        deb = _deb_of(debs, package)
        if deb is None:
            raise CorpusError(f"apt-get download did not produce {package}_*.deb in {debs}")
        report(f"dpkg -x {deb.name}")
        shutil.rmtree(tree, ignore_errors=True)
        _run(["dpkg", "-x", str(deb), str(tree)], debs, "dpkg -x")
        (tree / ".unpacked").write_text(deb.name + "\n")
    return trees


def package_versions(cache: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """``{package: version}`` of the downloaded ``.deb`` files (recorded in the corpus summary);
    apt-get download writes an epoch's colon as ``%3a`` in the file name."""
    versions = {}
    for package in packages:
        deb = _deb_of(cache / "debs", package)
        if deb is not None:
            versions[package] = urllib.parse.unquote(deb.name.split("_")[1])
    return versions


def _run(command: list[str], cwd: Path, what: str) -> None:
    if shutil.which(command[0]) is None:
        raise CorpusError(f"{command[0]} not found: the corpus is built on Debian or Ubuntu")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise CorpusError(f"{what} failed: {detail}")

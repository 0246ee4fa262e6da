"""The packages reserved for blind evaluation can never become training sources."""

from __future__ import annotations

import pytest

from tagger.corpus import catalog, independent
from tagger.corpus.packages import (PACKAGES, package_versions, RESERVED_FOR_BLIND_EVALUATION, CorpusError,
                                    check_training_sources, fetch_packages, reserved_pattern)

# The list as decided (shared/notes/offline-corpus.md), with renames, forks and siblings it names.
RESERVED = (
    "timgm6mb-soundfont", "freepats", "timidity", "timidity-interfaces-extra", "avldrums.lv2-soundfont",
    "gcompris-qt-data", "gcompris-qt", "klettres-data", "ktuberling-data", "tuxpaint-stamps-default",
    "tuxpaint-data", "openttd-opensfx", "minetest-data", "luanti-data", "minetest-mod-moreblocks",
    "freeciv-data", "freedoom", "7kaa-data", "simutrans-pak64", "simutrans-pak128.britain",
    "frozen-bubble-data", "oxygen-sounds", "gnome-audio", "deepin-sound-theme", "sound-icons",
    "wesnoth-1.16-data", "wesnoth-1.18-music", "flite", "libflite1", "festvox-kallpc16k",
    "festvox-us-slt-hts", "widelands-data", "warmux-data", "csoundqt-examples", "supertuxkart-data",
    "alsa-utils",
)


@pytest.mark.parametrize("package", RESERVED)
def test_every_reserved_package_is_recognised(package):
    assert reserved_pattern(package) is not None


def test_no_training_source_is_reserved():
    sources = set(PACKAGES) | {rule.package for rule in catalog.RULES}
    assert not {package for package in sources if reserved_pattern(package)}
    check_training_sources(sorted(sources))  # does not raise


def test_open_packages_are_not_reserved():
    for package in ("0ad-data", "hedgewars-data", "fluid-soundfont-gm", "musescore-general-soundfont",
                    "qabcs-data", "flightgear-data-base", "espeak-ng", "sound-theme-freedesktop"):
        assert reserved_pattern(package) is None, package


def test_a_reserved_training_source_is_refused_before_any_download(tmp_path, monkeypatch):
    import tagger.corpus.packages as packages

    calls = []
    monkeypatch.setattr(packages, "_run", lambda command, cwd, what: calls.append(command))
    with pytest.raises(CorpusError, match="freepats is reserved for blind evaluation"):
        fetch_packages(tmp_path, ("hedgewars-data", "freepats"))
    assert calls == [] and not (tmp_path / "debs").exists()


def test_the_independent_check_reads_reserved_packages_for_evaluation_only():
    # Its five packages are on the reserved list: it may evaluate on them, the corpus may not.
    assert all(reserved_pattern(p) for p in independent.CHECK_PACKAGES)
    assert len(RESERVED_FOR_BLIND_EVALUATION) >= 27


def test_package_versions_read_an_epoch_back_from_apt_get_download_file_names(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    (debs / "flightgear-data-base_1%3a2020.3.16+dfsg-1_all.deb").write_bytes(b"")
    (debs / "0ad-data_0.0.26-1_all.deb").write_bytes(b"")
    assert package_versions(tmp_path, ("flightgear-data-base", "0ad-data", "torcs-data")) == {
        "flightgear-data-base": "1:2020.3.16+dfsg-1", "0ad-data": "0.0.26-1"}

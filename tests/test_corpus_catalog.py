"""The recorded-source catalog on tiny fake package trees (CI has no Debian packages)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tagger.corpus.catalog import (
    DIR,
    FILE,
    NUMBERED,
    RULE,
    RULES,
    Rule,
    fingerprint,
    match_rule,
    scan,
)
from tagger.corpus.classes import CLASSES
from tagger.corpus.licences import licence_for, package_stanzas, parse_dep5

PKG = "fake-data"
ROOT = "usr/share/games/fake/"

COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-2+
 The full text
 of the licence.

Files: usr/share/games/fake/sounds/*
 usr/share/games/fake/extra/?ird.wav
Copyright: 2020 Someone Else
License: CC-BY-SA-3.0

Files: usr/share/games/fake/sounds/special*.wav
Copyright: 2021 A Third
License: CC0-1.0

Files: usr/share/games/fake/base/sound/footsteps/*
Copyright: 2021 Walker
License: CC-BY-3.0

License: GPL-2+
 A standalone licence paragraph, no Files field.
"""


def noise(seconds: float, rate: int = 16000, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """Noise with an uneven envelope, so that two seeds give clearly different recordings."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = np.repeat(rng.uniform(0.2, 1.0, n // 800 + 1), 800)[:n]
    return (amplitude * envelope * rng.standard_normal(n)).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate)
    return path


def make_package(packages: Path) -> Path:
    root = packages / PKG
    doc = root / "usr/share/doc" / PKG
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return root


def test_rules_assign_labels_and_exclude(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkgs")
    sounds = root / ROOT / "sounds"
    write(sounds / "dog1.wav", noise(1.0, seed=1))
    write(sounds / "dog2.wav", noise(1.2, seed=2))
    write(sounds / "dog3.wav", noise(1.1, rate=22050, seed=3), rate=22050)
    write(sounds / "horseman_ack1.wav", noise(1.0, seed=4))
    write(sounds / "horseman_die1.wav", noise(1.0, seed=5))
    write(sounds / "rainstorm.wav", noise(2.0, seed=6))
    write(sounds / "unlisted.wav", noise(1.0, seed=7))
    write(sounds / "short_dog.wav", noise(0.1, seed=8))
    write(sounds / "quiet_dog.wav", np.zeros(16000, dtype=np.float32))
    (sounds / "broken_dog.wav").write_bytes(b"RIFF not really a wave file")
    rules = [
        Rule(PKG, ROOT + "sounds/horseman_ack*", None),
        Rule(PKG, ROOT + "sounds/horseman_*.wav", ("Horse",), FILE),
        Rule(PKG, ROOT + "sounds/*dog*.wav", ("Dog",), NUMBERED),
        Rule(PKG, ROOT + "sounds/rain*.wav", ("Rain", "Thunder"), DIR),
    ]

    sources = scan(rules, tmp_path / "pkgs", tmp_path / "work")

    by_name = {Path(s.origin).name: s for s in sources}
    assert sorted(by_name) == ["dog1.wav", "dog2.wav", "dog3.wav", "horseman_die1.wav", "rainstorm.wav"]
    assert by_name["horseman_die1.wav"].labels == ("Horse",)
    assert by_name["rainstorm.wav"].labels == ("Rain", "Thunder")
    assert by_name["dog1.wav"].labels == ("Dog",)
    # Numbered takes of one format share a group; another sample rate is another recording.
    assert by_name["dog1.wav"].group == by_name["dog2.wav"].group
    assert by_name["dog3.wav"].group != by_name["dog1.wav"].group
    assert by_name["rainstorm.wav"].group == f"{PKG}:{ROOT}sounds"
    assert all(s.package == PKG and s.path.is_file() for s in sources)
    assert by_name["dog1.wav"].origin == ROOT + "sounds/dog1.wav"
    assert [s.origin for s in sources] == sorted(s.origin for s in sources)


def test_first_matching_rule_wins() -> None:
    rules = [Rule(PKG, "a/x*.wav", None), Rule(PKG, "a/*.wav", ("Dog",)), Rule("other", "*", ("Pig",))]
    assert match_rule(rules, PKG, "a/x1.wav") == rules[0]
    assert match_rule(rules, PKG, "a/deep/y.wav") == rules[1]  # `*` crosses directories
    assert match_rule(rules, PKG, "b/y.wav") is None
    assert match_rule(rules, "other", "b/y.wav") == rules[2]


def test_real_rule_table_is_well_formed_and_skips_what_the_notes_warn_about() -> None:
    for rule in RULES:
        assert rule.labels is None or set(rule.labels) <= set(CLASSES), rule
    units = "usr/share/games/megaglest/techs/megapack/commondata/sounds/"
    assert match_rule(RULES, "megaglest-data", units + "horseman_ack1.wav") is None
    assert match_rule(RULES, "megaglest-data", units + "horseman_die1.wav").labels == ("Horse",)
    allison = "usr/share/asterisk/sounds/en_US_f_Allison/"
    assert match_rule(RULES, "asterisk-core-sounds-en-wav", allison + "beep.wav").labels is None
    assert match_rule(RULES, "asterisk-core-sounds-en-wav", allison + "silence/1.wav").labels is None
    assert match_rule(RULES, "asterisk-core-sounds-en-wav", allison + "tt-monkeys.wav").labels is None
    assert match_rule(RULES, "asterisk-core-sounds-en-wav", allison + "goodbye.wav").labels == ("Speech",)
    voices = "usr/share/games/hedgewars/Data/Sounds/voices/"
    assert match_rule(RULES, "hedgewars-data", voices + "Robot/Hello.ogg").labels is None
    assert match_rule(RULES, "hedgewars-data", voices + "Pirate/Hello.ogg").labels == ("Speech",)
    assert match_rule(RULES, "hedgewars-data", voices + "Pirate/Laugh.ogg").labels == ("Laughter",)
    assert match_rule(RULES, "hedgewars-data", voices + "Pirate/Ow1.ogg") is None
    lincity = "usr/share/games/lincity-ng/sounds/"
    assert match_rule(RULES, "lincity-ng-data", lincity + "ParklandPlane1.wav") is None
    zeroad = "usr/share/games/0ad/mods/public/public.zip:audio/"
    assert match_rule(RULES, "0ad-data", zeroad + "actor/fauna/death/goat_10.ogg") is None  # not a class
    assert match_rule(RULES, "0ad-data", zeroad + "actor/fauna/animal/sheep_10.ogg").labels == ("Sheep",)
    assert match_rule(RULES, "0ad-data", zeroad + "voice/latin/civ/civ_male_attack.ogg").labels == ("Speech",)
    assert match_rule(RULES, "0ad-data", zeroad + "actor/human/death/male_death_01.ogg") is None
    assert match_rule(RULES, "0ad-data", zeroad + "attack/impact/arrow_wood_10.ogg").labels == ()


def test_dep5_lookup_last_matching_stanza_wins() -> None:
    stanzas = parse_dep5(COPYRIGHT)
    assert [s.licence for s in stanzas] == ["GPL-2+", "CC-BY-SA-3.0", "CC0-1.0", "CC-BY-3.0"]
    assert licence_for(stanzas, PKG, [ROOT + "music/theme.ogg"]) == "GPL-2+"
    assert licence_for(stanzas, PKG, [ROOT + "sounds/dog1.wav"]) == "CC-BY-SA-3.0"
    assert licence_for(stanzas, PKG, [ROOT + "sounds/deeper/dog1.wav"]) == "CC-BY-SA-3.0"
    assert licence_for(stanzas, PKG, [ROOT + "sounds/special_dog.wav"]) == "CC0-1.0"
    assert licence_for(stanzas, PKG, [ROOT + "extra/bird.wav"]) == "CC-BY-SA-3.0"  # `?` is one char
    assert licence_for(stanzas, PKG, [ROOT + "extra/blackbird.wav"]) == "GPL-2+"
    assert licence_for(parse_dep5("Files: a/*\nLicense: MIT\n"), PKG, ["b/x.wav"]) == "unknown"


def test_dep5_source_paths_map_installed_paths_without_suffix_guessing() -> None:
    copyright_text = (
        "Files: *\nLicense: GPL-2\n\n"
        "Files: share/hedgewars/Data/Sounds/*\nLicense: GFDL-1.3\n\n"
        "Files: hedgewars/*\nLicense: MIT\n"
    )
    stanzas = parse_dep5(copyright_text)
    installed = "usr/share/games/hedgewars/Data/"
    assert licence_for(stanzas, "hedgewars-data", [installed + "Sounds/voices/Pirate/Hello.ogg"]) == "GFDL-1.3"
    assert licence_for(stanzas, "hedgewars-data", [installed + "Music/City.ogg"]) == "GPL-2"


def test_content_duplicates_merge_and_distinct_recordings_do_not(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkgs")
    original = write(root / ROOT / "sounds/fire.wav", noise(3.0, seed=11))
    copy = root / ROOT / "other/blaze.wav"
    copy.parent.mkdir(parents=True)
    shutil.copy(original, copy)
    resampled = noise(3.0, seed=11)[::2]  # the same recording at 8 kHz under a third name
    write(root / ROOT / "other/flames.wav", resampled, rate=8000)
    write(root / ROOT / "sounds/campfire.wav", noise(3.0, seed=12))  # same length, other noise
    rules = [
        Rule(PKG, ROOT + "sounds/*.wav", ("Fire",), FILE),
        Rule(PKG, ROOT + "other/*.wav", ("Fire", "Wind"), FILE),
    ]

    sources = scan(rules, tmp_path / "pkgs", tmp_path / "work")

    by_name = {Path(s.origin).name: s for s in sources}
    assert sorted(by_name) == ["blaze.wav", "campfire.wav"]
    kept, other = by_name["blaze.wav"], by_name["campfire.wav"]
    assert kept.labels == ("Fire", "Wind")  # the dropped copies' labels join the kept one
    assert kept.group != other.group


def test_fingerprint_groups_a_longer_take_with_its_opening() -> None:
    long_take = noise(6.0, seed=21)
    full = fingerprint(long_take[:, None], 16000, 6.0)
    opening = fingerprint(long_take[: 16000 * 3, None], 16000, 3.0)
    unrelated = fingerprint(noise(3.0, seed=22)[:, None], 16000, 3.0)
    quieter = fingerprint(0.5 * long_take[:, None], 16000, 6.0)
    assert full.compare(opening) == "same"
    assert full.compare(quieter) == "duplicate"
    assert full.compare(unrelated) is None
    assert opening.compare(unrelated) is None


def test_fingerprint_tells_apart_two_steady_noises_with_the_same_spectrum() -> None:
    """Two rain (or engine) recordings: same level and spectrum, different fluctuations."""
    rng = np.random.default_rng(41)
    first, second = (0.2 * rng.standard_normal((16000 * 4, 1)) for _ in range(2))
    assert fingerprint(first, 16000, 4.0).compare(fingerprint(second, 16000, 4.0)) is None
    assert fingerprint(first, 16000, 4.0).compare(fingerprint(first * 0.7, 16000, 4.0)) == "duplicate"


@pytest.mark.parametrize("suffix", [".pk3", ".zip"])
def test_archive_members_are_extracted_once_with_member_licences(tmp_path: Path, suffix: str) -> None:
    root = make_package(tmp_path / "pkgs")
    audio = tmp_path / "step.wav"
    write(audio, noise(0.5, seed=31))
    archive = root / ROOT / f"base/0snd{suffix}"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(audio, "sound/footsteps/step1.wav")
        zipped.writestr("sound/doors/door1.wav", (tmp_path / "step.wav").read_bytes()[:10])  # broken
        zipped.write(write(tmp_path / "g.wav", noise(0.6, seed=32)), "sound/weapons/gun.wav")
        zipped.write(write(tmp_path / "u.wav", noise(0.6, seed=33)), "sound/ui/click.wav")
        zipped.writestr("scripts/readme.txt", "not audio")
    pk3 = ROOT + f"base/0snd{suffix}:"
    rules = [
        Rule(PKG, pk3 + "sound/footsteps/*.wav", ("Walk, footsteps",)),
        Rule(PKG, pk3 + "sound/doors/*.wav", ("Door",)),
        Rule(PKG, pk3 + "sound/weapons/*.wav", ("Gunshot, gunfire",)),
    ]
    work = tmp_path / "work"

    sources = scan(rules, tmp_path / "pkgs", work)

    assert [s.origin for s in sources] == [pk3 + "sound/footsteps/step1.wav", pk3 + "sound/weapons/gun.wav"]
    step, gun = sources
    assert step.path == work / PKG / ROOT / f"base/0snd{suffix}/sound/footsteps/step1.wav"
    assert step.path.read_bytes() == audio.read_bytes()
    assert step.licence == "CC-BY-3.0"  # the member's own stanza
    assert gun.licence == "GPL-2+"  # no member stanza: the archive's
    assert not (work / PKG / ROOT / f"base/0snd{suffix}/sound/ui").exists()  # only matched members
    modified = step.path.stat().st_mtime_ns
    again = scan(rules, tmp_path / "pkgs", work)
    assert again == sources
    assert step.path.stat().st_mtime_ns == modified  # already extracted: not written again


def test_absent_packages_are_skipped(tmp_path: Path) -> None:
    assert scan([Rule("missing-package", "*", ("Dog",))], tmp_path, tmp_path / "work") == []


def test_qabcs_and_scratch_rules_take_the_unambiguous_recordings_only() -> None:
    noises = "usr/share/qabcs/abcs/all/noises/"
    assert match_rule(RULES, "qabcs-data", noises + "saxophone.ogg").labels == ("Saxophone",)
    assert match_rule(RULES, "qabcs-data", noises + "squeezebox.ogg").labels == ("Accordion",)
    assert match_rule(RULES, "qabcs-data", noises + "grand_piano.ogg").labels == ("Piano",)
    assert match_rule(RULES, "qabcs-data", noises + "train.ogg").labels == ("Train",)
    for doubtful in ("horn.ogg", "whistle.ogg", "keyboard.ogg", "duck.ogg", "goose.ogg", "stork.ogg"):
        assert match_rule(RULES, "qabcs-data", noises + doubtful) is None, doubtful
    assert match_rule(RULES, "qabcs-data", "usr/share/qabcs/abcs/en/sounds/words/dog.ogg") is None
    sounds = "usr/share/scratch/Media/Sounds/"
    assert match_rule(RULES, "scratch", sounds + "Human/Laugh-male2.wav").labels == ("Laughter",)
    assert match_rule(RULES, "scratch", sounds + "Animal/HorseGallop.wav").labels == ("Horse",)
    assert match_rule(RULES, "scratch", sounds + "Human/PartyNoise.wav") is None
    assert match_rule(RULES, "scratch", sounds + "Human/Laugh-male3.mp3") is None


def test_scratch_media_map_to_their_copyright_stanza() -> None:
    stanzas = parse_dep5("Files: *\nLicense: GPL-2\n\nFiles: Help/* Media/* Projects\nLicense: CC-BY-SA-3.0\n")
    media = "usr/share/scratch/Media/Sounds/Human/Laugh-female.wav"
    assert licence_for(stanzas, "scratch", [media]) == "CC-BY-SA-3.0"
    assert licence_for(stanzas, "scratch", ["usr/share/scratch/Scratch.image"]) == "GPL-2"


def test_engine_weather_strum_and_taunt_rules() -> None:
    sar = "usr/share/games/searchandrescue/sounds/"
    assert match_rule(RULES, "searchandrescue-data", sar + "hh65/engine_start.wav").labels == ("Helicopter",)
    assert match_rule(RULES, "searchandrescue-data", sar + "jet_engine_outside.wav").labels == ("Aircraft",)
    assert match_rule(RULES, "searchandrescue-data", sar + "thunder_loud.wav").labels == ("Thunder",)
    for unused in ("gear_down.wav", "crash_ground.wav", "helicopter_wheel_screech.wav", "splash_human.wav"):
        assert match_rule(RULES, "searchandrescue-data", sar + unused) is None, unused
    strums = "usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums/"
    first, other = (match_rule(RULES, "hydrogen-drumkits-effects", strums + name)
                    for name in ("Amajor_00.flac", "Gsharp minor7b5_DOWN_03.flac"))
    assert first.labels == ("Acoustic guitar",) and first == other  # one guitar, one session: one group
    torcs = "usr/share/games/torcs/data/sound/"
    assert match_rule(RULES, "torcs-data", torcs + "renault-v10.wav").labels == ("Car",)
    assert match_rule(RULES, "torcs-data", torcs + "viper_long.wav").group == RULE
    for unused in ("crash1.wav", "skid_tyres.wav", "backfire_loop.wav", "turbo1.wav"):
        assert match_rule(RULES, "torcs-data", torcs + unused) is None, unused
    flare = "usr/share/games/flare/mods/fantasycore/"
    assert match_rule(RULES, "flare-game", flare + "music/wind_ambient.ogg").labels is None
    assert match_rule(RULES, "flare-game", flare + "music/town_theme.ogg").labels == ("Music",)
    assert match_rule(RULES, "flare-game", flare + "soundfx/environment/raven_loop.ogg").labels == ("Bird",)
    assert match_rule(RULES, "flare-game", flare + "soundfx/npcs/male_merchant_02.ogg").labels == ("Speech",)
    assert match_rule(RULES, "flare-game", flare + "soundfx/door_open.ogg") is None
    wz = "usr/share/games/warzone2100/base.wz:audio/"
    assert match_rule(RULES, "warzone2100-data", wz + "taunts/taunt2/hahaha2.ogg").labels == ("Laughter",)
    assert match_rule(RULES, "warzone2100-data", wz + "taunts/taunt2/tkethat2.ogg").labels == ("Speech",)
    assert match_rule(RULES, "warzone2100-data", wz + "sfx/misc/scream2.ogg").labels == ("Screaming",)
    assert match_rule(RULES, "warzone2100-data", wz + "nexus/laugh1.ogg") is None  # processed


def test_wz_archives_are_read_like_zip_archives(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkgs")
    archive = root / ROOT / "base.wz"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(write(tmp_path / "l.wav", noise(0.6, seed=34)), "audio/taunts/t1/haha1.wav")
    rules = [Rule(PKG, ROOT + "base.wz:audio/taunts/*/haha*.wav", ("Laughter",), DIR)]
    [laugh] = scan(rules, tmp_path / "pkgs", tmp_path / "work")
    assert laugh.labels == ("Laughter",) and laugh.group == f"{PKG}:{ROOT}base.wz:audio/taunts/t1"


def test_guitar_strums_take_their_kit_archive_stanza(tmp_path: Path) -> None:
    copyright_text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nLicense: GPL-2+\n\n"
        "Files: drumkits/belofilms_GuitarStrums.h2drumkit\nLicense: CC-BY-3.0\n"
    )
    stanzas = parse_dep5(copyright_text)
    kits = "usr/share/hydrogen/data/drumkits/"
    package = "hydrogen-drumkits-effects"
    assert licence_for(stanzas, package, [kits + "belofilms_GuitarStrums/Amajor_00.flac"]) == "CC-BY-3.0"
    assert licence_for(stanzas, package, [kits + "Audiophob/kick.flac"]) == "GPL-2+"


def test_a_package_without_dep5_copyright_gets_its_hand_read_licence(tmp_path: Path) -> None:
    package = "searchandrescue-data"
    doc = tmp_path / package / "usr/share/doc" / package
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("This software is Copyright (C) 1999-2004 WolfPack Entertainment\n"
                                   "You are free to distribute this software under the terms of\n"
                                   "the GNU General Public License.\n")
    stanzas = package_stanzas(tmp_path / package, package)
    sound = "usr/share/games/searchandrescue/sounds/thunder_loud.wav"
    assert licence_for(stanzas, package, [sound]) == "GPL"
    assert package_stanzas(tmp_path / "missing", package) == []
    other = tmp_path / "other-data" / "usr/share/doc/other-data"
    other.mkdir(parents=True)
    (other / "copyright").write_text("Free to use.\n")
    unread = package_stanzas(tmp_path / "other-data", "other-data")
    assert licence_for(unread, "other-data", [sound]) == "unknown"


def test_flightgear_rules_take_engines_rotors_and_weather_only() -> None:
    fg = "usr/share/games/flightgear/"
    assert match_rule(RULES, "flightgear-data-base", fg + "Sounds/turboprop1.wav").labels == ("Aircraft",)
    assert match_rule(RULES, "flightgear-data-base", fg + "Sounds/rotor-2blade.wav").labels == ("Helicopter",)
    assert match_rule(RULES, "flightgear-data-base", fg + "Sounds/thunder2.wav").labels == ("Thunder",)
    assert match_rule(RULES, "flightgear-data-base", fg + "Aircraft/c172p/Sounds/door-opening.wav").group == RULE
    for unused in ("Sounds/wind-8khz.wav", "Sounds/gear-hrn.wav", "Sounds/mk-viii/bank-angle.wav",
                   "Aircraft/c172p/Sounds/crash.wav", "Aircraft/c172p/Sounds/click.wav"):
        assert match_rule(RULES, "flightgear-data-base", fg + unused) is None, unused

"""Manifests, class folders, splits, the epoch sampler and the decoded-audio cache."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_classes import write_folders, write_manifest
from tagger.audio import load_audio
from tagger.data import (AudioCache, ClipDataset, DataError, EpochSampler, Example, ManifestFormat,
                         read_examples, read_labels_file, sample_weights, stratified_split,
                         target_matrix, vocabulary)


def test_manifest_paths_are_relative_to_it_and_labels_split(tmp_path):
    manifest = write_manifest(tmp_path / "set", clips=6, seconds=0.3)
    examples = read_examples(manifest)
    assert len(examples) == 6
    assert all(e.path.startswith(str(tmp_path / "set" / "clips")) for e in examples)
    text = manifest.read_text().splitlines()[1]
    assert examples[0].labels == tuple(text.split(",", 1)[1].strip('"').split(","))


def test_manifest_with_other_columns_and_separators(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(800, np.float32), 16000)
    (tmp_path / "m.tsv").write_text("file\ttags\na.wav\tDog;Bark;Dog\n")
    fmt = ManifestFormat(path_column="file", labels_column="tags", delimiter="\t", label_separator=";")
    assert read_examples(tmp_path / "m.tsv", fmt)[0].labels == ("Dog", "Bark")
    with pytest.raises(DataError, match="no column 'labels'"):
        read_examples(tmp_path / "m.tsv", ManifestFormat(path_column="file", delimiter="\t"))


def test_missing_files_and_empty_folders_are_errors(tmp_path):
    (tmp_path / "m.csv").write_text("path,labels\nnope.wav,x\n")
    with pytest.raises(DataError, match="1 audio file\\(s\\) missing"):
        read_examples(tmp_path / "m.csv")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no audio files in class folders"):
        read_examples(tmp_path / "empty")


def test_labels_file(tmp_path):
    (tmp_path / "labels.txt").write_text("Speech\n\nMusic\n")
    assert read_labels_file(tmp_path / "labels.txt") == ["Speech", "Music"]
    (tmp_path / "twice.txt").write_text("a\na\n")
    with pytest.raises(DataError, match="listed twice"):
        read_labels_file(tmp_path / "twice.txt")


def test_stratified_split_is_seeded_and_keeps_every_class(tmp_path):
    examples = read_examples(write_folders(tmp_path, per_class=5, seconds=0.2))
    train, val = stratified_split(examples, 0.4, seed=3)
    assert (train, val) == stratified_split(examples, 0.4, seed=3)
    assert stratified_split(examples, 0.4, seed=4)[1] != val
    assert len(val) == 10 and not set(e.path for e in train) & set(e.path for e in val)
    assert vocabulary(val) == vocabulary(examples)  # two clips of each class


def test_sampler_resumes_mid_epoch_and_shards_like_distributed_sampler():
    full = list(EpochSampler(10, seed=1))
    assert sorted(index for index, _ in full) == list(range(10))
    resumed = EpochSampler(10, seed=1)
    resumed.set_epoch(0, skip=4)
    assert list(resumed) == full[4:]
    other_epoch = EpochSampler(10, seed=1)
    other_epoch.set_epoch(1)
    assert [i for i, _ in other_epoch] != [i for i, _ in full]
    ranks = [list(EpochSampler(10, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4]  # padded to 12 by repeating the start
    draws = [d for r in ranks for _, d in r]
    assert len(set(draws)) == 12


def test_weighted_sampling_favours_rare_labels():
    targets = np.zeros((100, 2), np.float32)
    targets[:95, 0] = 1
    targets[95:, 1] = 1
    weights = sample_weights(targets)
    assert weights[99] > weights[0]
    drawn = [i for i, _ in EpochSampler(100, seed=0, weights=weights)]
    assert sum(i >= 95 for i in drawn) > 5  # the 5 rare clips are drawn more than 5 times


def test_dataset_crops_pads_and_augments_deterministically(tmp_path):
    rate = 32000
    sf.write(tmp_path / "long.wav", np.random.default_rng(0).uniform(-0.5, 0.5, rate).astype(np.float32), rate)
    sf.write(tmp_path / "short.wav", np.full(rate // 4, 0.25, np.float32), rate)
    (tmp_path / "m.csv").write_text("path,labels\nlong.wav,a\nshort.wav,b\n")
    examples = read_examples(tmp_path / "m.csv")
    data = ClipDataset(examples, ["a", "b"], window=rate // 2, sample_rate=rate, seed=0)
    wave, target, index, error = data[(1, 0)]
    assert wave.shape == (rate // 2,) and target.tolist() == [0.0, 1.0] and (index, error) == (1, "")
    assert np.all(wave[: rate // 4].numpy() == 0.25) and np.all(wave[rate // 4:].numpy() == 0)  # padded
    crop = data[(0, 3)][0].numpy()
    audio = load_audio(tmp_path / "long.wav", rate)
    starts = [s for s in range(rate // 2 + 1) if np.array_equal(crop, audio[s:s + rate // 2])]
    assert len(starts) == 1  # a crop of the clip, without augmentation here
    assert np.array_equal(data[(0, 7)][0], data[(0, 7)][0])
    assert not np.array_equal(data[(0, 7)][0], data[(0, 8)][0])


def test_a_clip_that_fails_to_decode_comes_back_as_silence_with_its_error(tmp_path):
    rate = 32000
    samples = np.zeros(rate, np.float32)
    samples[10] = np.inf
    sf.write(tmp_path / "inf.wav", samples, rate, subtype="FLOAT")
    (tmp_path / "m.csv").write_text("path,labels\ninf.wav,a\n")
    data = ClipDataset(read_examples(tmp_path / "m.csv"), ["a", "b"], window=rate // 2, sample_rate=rate)
    wave, target, index, error = data[(0, 0)]
    assert not wave.any() and target.tolist() == [1.0, 0.0] and index == 0
    assert error == "cannot decode audio (holds NaN or infinite samples)"


def test_cache_stores_float16_and_is_keyed_by_file_state(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.linspace(-0.5, 0.5, 16000).astype(np.float32), 16000)
    cache = AudioCache(tmp_path / "cache", 32000)
    first = cache.load(str(path))
    entries = list((tmp_path / "cache").glob("*.npy"))
    assert len(entries) == 1 and np.load(entries[0]).dtype == np.float16
    np.testing.assert_allclose(cache.load(str(path)), first, atol=1e-3)
    sf.write(path, np.zeros(8000, np.float32), 16000)  # a new file at the same path
    assert len(cache.load(str(path))) == 16000
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_target_matrix():
    examples = [Example("x", ("b", "a")), Example("y", ())]
    assert target_matrix(examples, ["a", "b", "c"]).tolist() == [[1, 1, 0], [0, 0, 0]]

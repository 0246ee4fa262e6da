"""The pieces of `tagger listen` that need no sound server: events, the audio queue, device choice."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sounddevice as sd

from conftest import run_tagger, tagger_env
from tagger.capture import AudioDeviceError, AudioQueue, InputDevice, MicrophoneSource, find_device
from tagger.events import EventDecoder, EventOptions, EventTracker, Smoother, label_thresholds
from tagger.live import LiveSettings, LiveTagger
from tagger.events import parse_label_thresholds, shown_labels

LABELS = ["dog", "cat", "Speech"]


def feed(tracker: EventTracker, series: list[list[float]], hop: float = 1.0) -> list[dict]:
    records = []
    for n, probs in enumerate(series, start=1):
        records += tracker.update(n * hop - hop, n * hop, np.array(probs, np.float32))
    return records


def test_one_sound_in_overlapping_windows_is_one_event_with_hysteresis():
    tracker = EventTracker(LABELS, label_thresholds(LABELS, 0.5), offset_ratio=0.6)
    # dog rises, dips to 0.35 (above 0.5 * 0.6 = 0.3: still the same event), then falls away
    dog = [0.1, 0.6, 0.9, 0.35, 0.8, 0.2, 0.1]
    records = feed(tracker, [[p, 0.0, 0.0] for p in dog])
    assert [(r["event"], r["label"]) for r in records] == [("onset", "dog"), ("offset", "dog")]
    onset, offset = records
    assert onset["onset"] == 1.0 and onset["time"] == 2.0
    assert offset["offset"] == 5.0 and offset["duration"] == 4.0 and offset["peak"] == pytest.approx(0.9)


def test_without_hysteresis_the_dip_splits_the_sound():
    tracker = EventTracker(LABELS, label_thresholds(LABELS, 0.5), offset_ratio=1.0)
    records = feed(tracker, [[p, 0.0, 0.0] for p in [0.6, 0.35, 0.8, 0.1]])
    assert [r["event"] for r in records] == ["onset", "offset", "onset", "offset"]


def test_minimum_duration_drops_blips_and_delays_confirmation():
    tracker = EventTracker(LABELS, label_thresholds(LABELS, 0.5), min_duration=2.0)
    blip = feed(tracker, [[0.9, 0, 0], [0.1, 0, 0]])
    assert blip == []
    records = feed(tracker, [[0.9, 0, 0], [0.9, 0, 0], [0.1, 0, 0]])
    assert [r["event"] for r in records] == ["onset", "offset"]
    assert records[0]["time"] == 2.0 and records[0]["onset"] == 0.0


def test_per_label_thresholds_active_mask_and_close():
    thresholds = label_thresholds(LABELS, 0.5, parse_label_thresholds(LABELS, ["speech=0.2"]))
    assert thresholds.tolist() == pytest.approx([0.5, 0.5, 0.2])
    shown = shown_labels(LABELS, [], ["cat"])  # the tracker follows the reported labels only
    tracker = EventTracker([LABELS[i] for i in shown], thresholds[shown])
    records = feed(tracker, [np.array([0.1, 0.9, 0.3])[shown]])
    assert [(r["event"], r["label"]) for r in records] == [("onset", "Speech")]
    closed = tracker.close(7.5)
    assert [(r["event"], r["offset"]) for r in closed] == [("offset", 7.5)]
    assert tracker.ongoing == []


@pytest.mark.parametrize("bad", ["speech", "=0.3", "Speech=x", "Parrot=0.5"])
def test_bad_label_thresholds(bad):
    with pytest.raises(ValueError):
        parse_label_thresholds(LABELS, [bad])


def test_label_filters():
    assert shown_labels(LABELS, ["DOG", "speech"], []).tolist() == [0, 2]
    assert shown_labels(LABELS, [], ["cat"]).tolist() == [0, 2]
    with pytest.raises(ValueError, match="did you mean 'Speech'"):
        shown_labels(LABELS, ["Speach"], [])
    with pytest.raises(ValueError, match="no label"):
        shown_labels(LABELS, ["dog"], ["dog"])


def test_smoother_averages_the_last_windows():
    smooth = Smoother(2)
    assert smooth(np.array([1.0])).tolist() == [1.0]
    assert smooth(np.array([0.0])).tolist() == [0.5]
    assert smooth(np.array([0.0])).tolist() == [0.0]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_queue_keeps_order_and_counts_overflow_as_a_gap():
    queue = AudioQueue(rate=10, channels=1, capacity_seconds=1.0, clock=Clock())
    queue.write(np.arange(6, dtype=np.float32)[:, None])
    chunk = queue.read(0)
    assert chunk.frames[:, 0].tolist() == list(range(6)) and chunk.gap == 0
    queue.write(np.arange(6, 20, dtype=np.float32)[:, None])  # 14 frames into a 10-frame ring
    chunk = queue.read(0)
    assert chunk.frames[:, 0].tolist() == list(range(10, 20))
    assert chunk.gap == pytest.approx(0.4) and queue.overflow == pytest.approx(0.4)
    assert queue.read(0) is None


def test_non_finite_frames_become_silence_and_count_as_lost_audio():
    queue = AudioQueue(rate=10, channels=2, capacity_seconds=2.0, clock=Clock())
    block = np.ones((8, 2), np.float32)
    block[2, 0], block[5, 1], block[6] = np.nan, np.inf, -np.inf
    queue.write(block)
    frames = queue.read(0).frames
    assert np.isfinite(frames).all()
    assert frames[[2, 5, 6]].tolist() == [[0.0, 0.0]] * 3 and frames[[0, 1, 3, 4, 7]].min() == 1.0
    assert queue.invalid == pytest.approx(0.3) and queue.lost == pytest.approx(0.3)


def test_queue_compares_frames_with_the_clock():
    clock = Clock()
    queue = AudioQueue(rate=100, channels=1, capacity_seconds=30, tolerance=0.25, settle=1.0, clock=clock)
    block = np.zeros((10, 1), np.float32)
    for _ in range(50):  # 0.1 s blocks in real time: nothing lost
        clock.now += 0.1
        queue.write(block)
    assert queue.lost == 0 and queue.late == 0
    clock.now += 3.0  # the server dropped 3 s, then audio flows again
    for _ in range(20):
        clock.now += 0.1
        queue.write(block)
    assert queue.missing == pytest.approx(3.0, abs=0.11)
    assert queue.late == 0
    clock.now += 0.5  # late audio that catches up is not lost
    queue.write(block)
    queue.write(np.zeros((50, 1), np.float32))
    assert queue.missing == pytest.approx(3.0, abs=0.11)


def test_overflow_flag_from_the_callback_is_counted():
    source = MicrophoneSource.__new__(MicrophoneSource)
    source.queue = AudioQueue(rate=48000, channels=1, capacity_seconds=1)
    source._callback(np.zeros((1024, 1), np.float32), 1024, None, sd.CallbackFlags(2))
    source._callback(np.zeros((1024, 1), np.float32), 1024, None, sd.CallbackFlags())
    assert source.queue.flags == 1
    assert len(source.queue.read(0).frames) == 2048


DEVICES = [InputDevice(0, "pulse", "ALSA", 32, 44100, False),
           InputDevice(1, "default", "ALSA", 32, 44100, True),
           InputDevice(4, "USB Audio Mic: hw:2,0", "ALSA", 1, 48000, False)]


def test_device_by_index_name_or_part():
    assert find_device(DEVICES, None).name == "default"
    assert find_device(DEVICES, "4").name.startswith("USB")
    assert find_device(DEVICES, "PULSE").index == 0
    assert find_device(DEVICES, "usb").index == 4
    with pytest.raises(AudioDeviceError, match="ambiguous"):
        find_device(DEVICES, "u")
    with pytest.raises(AudioDeviceError, match="no input device matches"):
        find_device(DEVICES, "bluetooth")
    with pytest.raises(AudioDeviceError, match="index 7"):
        find_device(DEVICES, "7")
    with pytest.raises(AudioDeviceError, match="no audio input devices"):
        find_device([], None)


class SlowBackend:
    """A model that takes a known time per call and always says 'dog'."""

    labels = LABELS
    sample_rate = 1000
    max_samples = 4000
    context_seconds = 4.0
    name = "slow"
    batch_size = 8
    thresholds: dict = {}
    seconds_per_call = 0.05

    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds_per_call)
        return np.tile(np.array([0.9, 0.1, 0.1], np.float32), (len(waveforms), 1))


def test_the_last_windows_latency_includes_the_time_spent_tagging_them():
    backend = SlowBackend()
    live = LiveTagger(backend, LiveSettings(window=2000, hop=1000), EventDecoder(LABELS, EventOptions(), 1.0),
                      input_rate=1000)
    updates = live.push(np.ones((2500, 1), np.float32), arrival=time.monotonic())
    final = live.finish()
    assert [u.end for u in updates] == [1.0, 2.0] and final[-1].end == 2.5
    assert all(u.latency >= backend.seconds_per_call for u in updates + final)


def test_devices_as_json_is_a_list_even_when_there_are_none(tmp_path):
    import json

    env = tagger_env({"PULSE_SERVER": f"unix:{tmp_path}/no-server"})
    result = run_tagger("devices", "-f", "json", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)
    assert isinstance(devices, list)
    if not devices:  # the table form says why there is nothing to list
        table = run_tagger("devices", env=env, timeout=120)
        assert table.returncode == 1 and table.stderr.startswith("error: no audio input devices found")


def test_a_model_slower_than_the_hop_skips_stale_windows_to_stay_current():
    backend = SlowBackend()
    backend.seconds_per_call = 0.2  # two hops of model time per window
    live = LiveTagger(backend, LiveSettings(window=400, hop=100), EventDecoder(LABELS, EventOptions(), 0.1),
                      input_rate=1000)
    first = live.push(np.ones((100, 1), np.float32), arrival=time.monotonic())  # measures the model
    assert [u.end for u in first] == [0.1] and live.skipped == 0
    # ten hops arrived while it was busy: only the newest window is tagged, the nine before it skipped
    later = live.push(np.ones((1000, 1), np.float32), arrival=time.monotonic())
    assert [u.end for u in later] == [1.1] and live.skipped == 9
    assert later[0].probabilities is not None and not later[0].warmup

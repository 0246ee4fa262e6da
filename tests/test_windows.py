import numpy as np
import pytest

from tagger.windows import WindowEngine


def run(engine: WindowEngine, signal: np.ndarray, block_sizes) -> list:
    windows, pos = [], 0
    for size in block_sizes:
        windows += engine.push(signal[pos:pos + size])
        pos += size
    assert pos >= len(signal)
    return windows + engine.flush()


def spans(windows) -> list[tuple[int, int]]:
    return [(w.start, w.end) for w in windows]


def test_regular_windows_then_one_aligned_to_the_end():
    signal = np.arange(1050, dtype=np.float32)
    windows = run(WindowEngine(window=400, hop=200), signal, [1050])
    assert spans(windows) == [(0, 400), (200, 600), (400, 800), (600, 1000), (650, 1050)]
    for w in windows:
        np.testing.assert_array_equal(w.samples, signal[w.start:w.end])


def test_no_extra_window_when_hops_end_exactly_at_the_end():
    windows = run(WindowEngine(window=400, hop=200), np.zeros(1000, np.float32), [1000])
    assert spans(windows) == [(0, 400), (200, 600), (400, 800), (600, 1000)]


def test_clip_shorter_than_a_window_is_one_unpadded_window():
    signal = np.linspace(-1, 1, 250, dtype=np.float32)
    windows = run(WindowEngine(window=400, hop=200), signal, [100, 100, 50])
    assert spans(windows) == [(0, 250)]
    np.testing.assert_array_equal(windows[0].samples, signal)


def test_empty_stream_gives_no_windows():
    assert run(WindowEngine(window=400, hop=200), np.zeros(0, np.float32), []) == []


@pytest.mark.parametrize("seed", range(5))
def test_block_sizes_do_not_change_the_windows(seed):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal(5000).astype(np.float32)
    reference = run(WindowEngine(window=700, hop=300), signal, [len(signal)])
    sizes = []
    while sum(sizes) < len(signal):
        sizes.append(int(rng.integers(0, 900)))
    windows = run(WindowEngine(window=700, hop=300), signal, sizes)
    assert spans(windows) == spans(reference)
    for a, b in zip(windows, reference):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_hop_longer_than_window_skips_audio():
    windows = run(WindowEngine(window=100, hop=300), np.zeros(1000, np.float32), [1000])
    assert spans(windows) == [(0, 100), (300, 400), (600, 700), (900, 1000)]


def test_memory_stays_bounded_on_a_long_stream():
    engine = WindowEngine(window=1000, hop=250)
    largest = 0
    for _ in range(2000):
        engine.push(np.zeros(333, np.float32))
        largest = max(largest, len(engine._buffer))
    assert largest <= 1000 + 333
    assert engine.received == 2000 * 333


def test_warmup_emits_growing_windows_until_the_first_full_one():
    engine = WindowEngine(window=1000, hop=250, warmup=True)
    windows = run(engine, np.zeros(1600, np.float32), [100] * 16)
    assert spans(windows) == [(0, 250), (0, 500), (0, 750), (0, 1000), (250, 1250), (500, 1500),
                              (600, 1600)]

"""``tagger file --plot``: one file's top labels as probability over time, and its events as bars.

Readable without colour: each label has its own line style and marker, and its own row of event
bars, named on the axis. matplotlib is an optional extra (``pip install 'tagger[plot]'``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .aggregate import top_k
from .atomic import atomic_write
from .errors import TaggerError
from .output import Sink
from .tagging import FileResult

STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1, 1, 1)), "v"),
          ((0, (1, 3)), "x"), ((0, (8, 3)), "+"), ((0, (3, 1, 1, 1)), "*")]
MAX_LABELS = len(STYLES)


def require_matplotlib() -> None:
    """Fail before any work when the optional extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        raise TaggerError("--plot needs matplotlib: pip install 'tagger[plot]' (or matplotlib)") from None


class PlotSink:
    """A sink that passes every result on and plots it (``tagger file --plot`` takes one file)."""

    def __init__(self, sink: Sink, labels: list[str], k: int, threshold: float | None, output: Path) -> None:
        self.sink, self.labels, self.k, self.threshold, self.output = sink, labels, k, threshold, output

    def add(self, result: FileResult) -> None:
        self.sink.add(result)
        plot_file(result, self.labels, self.k, self.threshold, self.output)

    def add_error(self, path: str, message: str) -> None:
        self.sink.add_error(path, message)

    def close(self) -> None:
        self.sink.close()


def plot_file(result: FileResult, labels: list[str], k: int, threshold: float | None, output: Path) -> None:
    """Write a PNG of the ``k`` labels with the highest clip scores (at most :data:`MAX_LABELS`);
    ``threshold``: the one --threshold given for every label (drawn as a line), or None."""
    require_matplotlib()
    import matplotlib.pyplot as plt
    chosen = list(top_k(result.clip, min(k, MAX_LABELS)))
    starts = np.array([w.start for w in result.windows])
    ends = np.array([w.end for w in result.windows])
    scores = np.stack([w.probabilities for w in result.windows])
    events = result.events or []
    shown_events = [e for e in events if e["label"] in {labels[i] for i in chosen}]
    figure, (curves, bars) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 1.4]}, dpi=100)
    for (line, marker), i in zip(STYLES, chosen):
        if len(starts) == 1:  # one window: its score over the whole clip
            x, y = [starts[0], ends[0]], [scores[0, i]] * 2
        else:
            x, y = (starts + ends) / 2, scores[:, i]
        curves.plot(x, y, color="black", linestyle=line, marker=marker, markersize=4, linewidth=1.2,
                    label=f"{labels[i]} ({result.clip[i]:.2f})")
    if threshold is not None:
        curves.axhline(threshold, color="0.6", linewidth=0.8)
    curves.set_ylim(0, 1.02)
    curves.set_ylabel("probability")
    curves.set_title(f"{Path(result.path).name}: top labels per window (x: window centre)", fontsize=10)
    curves.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    curves.grid(axis="y", color="0.9")
    rows = [labels[i] for i in chosen]
    for row, label in enumerate(rows):
        spans = [(e["onset"], e["offset"] - e["onset"]) for e in shown_events if e["label"] == label]
        if spans:
            bars.broken_barh(spans, (row - 0.35, 0.7), facecolors="0.35", edgecolors="black")
    bars.set_yticks(range(len(rows)), rows, fontsize=8)
    bars.set_ylim(len(rows) - 0.5, -0.5)
    bars.set_xlim(0, max(result.duration, float(ends.max())))
    bars.set_xlabel("seconds")
    bars.set_title("events" if threshold is None else f"events (threshold {threshold:g})", fontsize=9, loc="left")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(output, "wb") as handle:
            figure.savefig(handle, format="png")
    except OSError as exc:
        raise TaggerError(f"{output}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(figure)

"""Text shared by the tables of `file`, `eval`, `train` and the live displays: times, metric cells and
bars that read without colour."""

from __future__ import annotations


def format_time(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss.s`` from an hour on)."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:04.1f}"
    return f"{minutes}:{secs:04.1f}"


def probability_bar(probability: float, width: int = 20) -> str:
    """A bar that reads without colour: filled and empty cells use different characters."""
    filled = int(round(max(0.0, min(1.0, probability)) * width))
    return "█" * filled + "·" * (width - filled)


def rounded(value: float, digits: int = 3) -> float:
    """A plain float with ``digits`` decimals (for JSON)."""
    return round(float(value), digits)


def metric_cell(value: float | None, short: bool = False) -> str:
    """A table cell for a metric: 4 decimals (3 significant digits when ``short``), ``-`` when undefined."""
    if value is None:
        return "-"
    return f"{value:.3g}" if short else f"{value:.4f}"

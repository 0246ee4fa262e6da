"""Text shared by the file tables and the live displays: times and bars that read without colour."""

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

"""Errors whose message is meant for the person running `tagger` (one line, no traceback)."""


class TaggerError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits non-zero."""


class AudioDecodeError(TaggerError):
    """An audio file cannot be read or decoded."""


class ModelLoadError(TaggerError):
    """A model name, path or checkpoint cannot be turned into a model."""


class DownloadError(TaggerError):
    """A model download failed (offline, bad URL, size or checksum mismatch)."""

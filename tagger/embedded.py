"""The default model that ships inside the package: a small PaSST trained on the offline corpus.

It is a tagger model file (fp16 weights) in ``tagger/assets``, with its model card beside it; it
needs no download, so ``tagger file`` and ``tagger listen`` work offline on a fresh machine.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

EMBEDDED_MODEL = "offline-50"
DESCRIPTION = ("embedded: small PaSST (128/6/2) trained on real sounds from Debian packages, "
               "50 AudioSet classes; see its model card")


def _asset(name: str) -> Path:
    return Path(str(resources.files("tagger.assets").joinpath(name)))


def embedded_model_path() -> Path:
    return _asset(f"{EMBEDDED_MODEL}.pt")


def embedded_model_card() -> Path:
    return _asset(f"{EMBEDDED_MODEL}.md")


def example_clip() -> Path:
    """The demo clip (20 s of real sounds, see :mod:`tagger.corpus.example`)."""
    return _asset("example.ogg")

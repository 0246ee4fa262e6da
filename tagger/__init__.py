"""tagger: a streaming command-line audio tagger built on PaSST.

The package root stays light (no torch import), so the ONNX runtime path can start fast.
``from tagger.loading import load_model`` gives a PyTorch model.
"""

__version__ = "0.1.0"

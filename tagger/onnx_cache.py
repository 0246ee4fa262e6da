"""The automatic fast path: a PyTorch model file runs as a cached ONNX Runtime graph.

The first time a PyTorch model (a file, a registry name or the embedded model) is opened with
``--backend auto`` on the CPU, it is exported with the ``tagger export`` step (float32, verified
against the PyTorch model as ``tagger export`` verifies) and stored in ``<cache>/onnx/`` (the cache
folder of :func:`tagger.registry.cache_dir`: ``$TAGGER_CACHE_DIR``, ``$XDG_CACHE_HOME/tagger`` or
``~/.cache/tagger``). Later runs find the graph by its key and never import torch.

The key is a hash of the model file's SHA-256, the options that change how it loads
(``--num-heads``, a registry model's stride), the tagger version and the opset, so a changed model
file or a new tagger gets a new graph. Hashing PaSST-S's 345 MB takes a quarter of a second, so
``digests.json`` remembers each file's SHA-256 with its size, modification time (ns) and inode,
and a file whose three are unchanged is not hashed again. The graph is written atomically: a run killed while it
builds leaves no file that a later run could take for a finished one. Delete the folder to clear
the cache; nothing else refers to it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from . import __version__
from .atomic import atomic_write
from .options import MIN_OPSET
from .registry import cache_dir, sha256_of

CACHE_OPSET = MIN_OPSET
DIGESTS = "digests.json"
GRAPH_RECIPE = 6  # raise when the exported graphs change (6: fused attention, int8 layers by measured error)


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


def model_digest(model: Path) -> str:
    """The SHA-256 of a model file, hashed once per version of the file (see the module's docstring)."""
    stat = model.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    key = str(model.resolve())
    index_path = onnx_cache_dir() / DIGESTS
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):  # no index yet, or a damaged one
        index = {}
    index = index if isinstance(index, dict) else {}
    entry = index.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_of(model)
    index[key] = {"stamp": stamp, "sha256": digest}
    try:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(index_path, "w") as out:
            json.dump(index, out)
    except OSError:  # a read-only cache: hash every time
        pass
    return digest


def cached_graph_path(model: Path, num_heads: int | None, stride: int | None, precision: str = "fp32") -> Path:
    """Where the graph of this model file (with these loading options and precision) is cached."""
    parts = [model_digest(model), f"heads={num_heads}", f"stride={stride}", f"tagger={__version__}",
             f"opset={CACHE_OPSET}", f"precision={precision}", f"recipe={GRAPH_RECIPE}"]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
    suffix = "" if precision == "fp32" else f"-{precision}"
    return onnx_cache_dir() / f"{model.stem}-{key}{suffix}.onnx"


def cached_graph(model_path: Path, name: str | None, stride: int | None, num_heads: int | None = None,
                 device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> Path:
    """The cached ONNX graph of a PyTorch model file (``name`` and ``stride`` as
    :func:`tagger.loading.model_file` gives them), exported (once) when it is not there yet.
    ``--backend auto`` uses the fp32 graph; ``tagger bench`` also measures the int8 one."""
    target = cached_graph_path(model_path, num_heads, stride, precision)
    if not target.is_file():
        _build(model_path, name, num_heads, stride, target, device, threads, precision)
    return target


def _build(model_path: Path, name: str | None, num_heads: int | None, stride: int | None,
           target: Path, device: str, threads: int | None, precision: str) -> None:
    """Export, verify and publish the graph (torch and tagger_export are imported only here)."""
    from tagger_export.command import publish
    from tagger_export.onnx_export import export_model
    from tagger_export.verify import verify

    from .checkpoint import load_checkpoint

    model = load_checkpoint(model_path, num_heads=num_heads, stride=stride)
    model.name = name or model.name
    print(f"preparing the {'' if precision == 'fp32' else precision + ' '}ONNX Runtime graph of {model.name} "
          f"(once; cached in {target.parent})",
          file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tagger-onnx-") as folder:
        exported = export_model(model, Path(folder) / target.name, source=name or str(model_path),
                                frontend="dft", precision=precision, opset=CACHE_OPSET)
        backend, _ = verify(model, exported, device=device, threads=threads)
        error = backend.int8_max_diff
        del backend  # release the session before the file is copied
        if precision == "int8":  # before the graph: a graph in the cache always has its facts
            with atomic_write(int8_error_path(target), "w") as out:
                json.dump({"int8_max_diff": error}, out)
        publish(exported, target)  # atomically, as tagger export writes its output


def int8_error_path(graph: Path) -> Path:
    return graph.with_suffix(".json")


def cached_int8_error(graph: Path) -> float | None:
    """The measured difference from fp32 of a cached int8 graph (from its side file, so that
    ``--precision fast`` can decide without opening the graph); None when unknown."""
    try:
        error = json.loads(int8_error_path(graph).read_text())["int8_max_diff"]
        return None if error is None else float(error)
    except (OSError, ValueError, KeyError, TypeError):
        return None

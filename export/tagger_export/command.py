"""``tagger export``: load a model, write its ONNX graph, verify it, report.

The file appears at the output path only once it is complete and verified (it is written next to
it under a temporary name, then renamed), so a failed export never leaves a file that looks usable.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.errors import TaggerError

if TYPE_CHECKING:
    from tagger.evaluate import EvalResult
    from tagger.model import AudioTagger
    from tagger.onnx_backend import OnnxBackend
    from tagger.tagging import Backend

    from .verify import CaseResult

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    model: str  # path or registry name, as the user typed it
    output: Path
    precision: str = "fp32"
    frontend: str = "dft"
    opset: int = 17
    verify: bool = True
    audio: Sequence[Path] = field(default_factory=tuple)
    labelled: Path | None = None
    num_heads: int | None = None
    device: str = "auto"
    threads: int | None = None


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path``, renamed onto it when the block succeeds, else removed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TaggerError(f"{path}: cannot write ({exc.strerror})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def run_export(request: ExportRequest, echo: Echo) -> None:
    """Export, then (unless asked not to) verify and compare mAP; raise TaggerError on failure."""
    if request.labelled and not request.verify:
        raise ValueError("--labelled needs the verification step (drop --no-verify)")
    for path in (*request.audio, *([request.labelled] if request.labelled else [])):
        if not path.exists():
            raise TaggerError(f"{path}: no such file or directory")
    from tagger.loading import load_model

    from .onnx_export import export_model
    from .verify import verify

    model = load_model(request.model, num_heads=request.num_heads)
    started = time.perf_counter()
    with atomic_path(request.output) as tmp:
        export_model(model, tmp, source=request.model, frontend=request.frontend,
                     precision=request.precision, opset=request.opset)
        size_mb = tmp.stat().st_size / 1e6
        echo(f"exported {model.name} to {request.output}: {request.precision}, front-end "
             f"{request.frontend}, opset {request.opset}, {size_mb:.1f} MB, "
             f"{time.perf_counter() - started:.1f} s")
        if request.verify:
            backend, results = verify(model, tmp, request.audio, request.device, request.threads)
            report_verification(backend.device, backend.precision, request.audio, results, echo)
            if request.labelled:
                report_map(model, backend, request.labelled, echo)
        else:
            echo("verification skipped (--no-verify)")


def report_verification(device: str, precision: str, audio: Sequence[Path],
                        results: list[CaseResult], echo: Echo) -> None:
    from .verify import TOLERANCES

    source = f"{len(audio)} audio file(s)" if audio else "the built-in synthetic test signal"
    echo(f"verification: onnxruntime ({device}) vs PyTorch fp32 on {source}")
    echo(f"  {'batch':>5} {'samples':>8} {'seconds':>8} {'max|dp|':>10} {'mean|dp|':>10} {'max|demb|':>10}")
    for r in results:
        echo(f"  {r.batch:>5} {r.samples:>8} {r.seconds:>8.3f} {r.max_diff:>10.2e} "
             f"{r.mean_diff:>10.2e} {r.embedding_diff:>10.2e}")
    worst = max(r.max_diff for r in results)
    mean = sum(r.mean_diff for r in results) / len(results)
    echo(f"max abs probability difference {worst:.2e} (mean {mean:.2e}; {precision} limit "
         f"{TOLERANCES[precision]:g}): ok")


def report_map(model: AudioTagger, backend: OnnxBackend, labelled: Path, echo: Echo) -> None:
    """mAP of the PyTorch fp32 model and of the export on labelled data, as ``tagger eval`` scores it."""
    from tagger.data import ManifestFormat
    from tagger.evaluate import evaluate_dataset
    from tagger.inference import TorchBackend
    from tagger.tagging import WindowSettings

    def score(candidate: Backend) -> EvalResult:
        return evaluate_dataset(candidate, model.multi_label, str(labelled), ManifestFormat(),
                                WindowSettings(), batch_size=8, pooling="max")

    reference = score(TorchBackend(model, device="cpu"))
    exported = score(backend)
    change = exported.metrics.mAP - reference.metrics.mAP
    echo(f"mAP on {reference.clips} labelled clips: PyTorch fp32 {reference.metrics.mAP:.4f}, "
         f"ONNX {backend.precision} {exported.metrics.mAP:.4f} (change {change:+.4f})")

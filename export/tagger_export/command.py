"""``tagger export``: load a model, write its ONNX graph, verify it, report.

The file is exported and verified in a temporary folder and only then copied to the output path
(atomically), so a failed export never leaves a file that looks usable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.atomic import atomic_write
from tagger.errors import TaggerError
from tagger.options import MIN_OPSET

if TYPE_CHECKING:
    from tagger.evaluate import EvalResult
    from tagger.model import AudioTagger
    from tagger.onnx_backend import OnnxBackend
    from tagger.backends import Backend

    from .verify import CaseResult

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    model: str  # path or registry name, as the user typed it
    output: Path
    precision: str = "fp32"
    frontend: str = "dft"
    opset: int = MIN_OPSET
    verify: bool = True
    audio: Sequence[Path] = field(default_factory=tuple)
    labelled: Path | None = None
    num_heads: int | None = None
    device: str = "auto"
    threads: int | None = None


def publish(exported: Path, output: Path) -> None:
    """Copy the verified file to ``output`` atomically (readers never see a partial file)."""
    try:
        with open(exported, "rb") as source, atomic_write(output) as target:
            shutil.copyfileobj(source, target, length=1 << 24)
    except OSError as exc:
        raise TaggerError(f"{output}: cannot write ({exc.strerror or exc})") from None


def run_export(request: ExportRequest, echo: Echo) -> None:
    """Export, then (unless asked not to) verify and compare mAP; raise TaggerError on failure."""
    if request.labelled and not request.verify:
        raise ValueError("--labelled needs the verification step (drop --no-verify)")
    for path in (*request.audio, *([request.labelled] if request.labelled else [])):
        if not path.exists():
            raise TaggerError(f"{path}: no such file or directory")
    existing = next(p for p in request.output.absolute().parents if p.exists())
    if not os.access(existing, os.W_OK):  # fail before the export, not after it
        raise TaggerError(f"{request.output}: cannot write (no permission in {existing})")
    from tagger.loading import load_model

    from .onnx_export import export_model
    from .verify import VerificationError, verify

    model = load_model(request.model, num_heads=request.num_heads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tagger-export-") as folder:
        exported = export_model(model, Path(folder) / request.output.name, source=request.model,
                                frontend=request.frontend, precision=request.precision,
                                opset=request.opset, audio=request.audio, report=echo)
        echo(f"exported {model.name}: {request.precision}, front-end {request.frontend}, opset "
             f"{request.opset}, {exported.stat().st_size / 1e6:.1f} MB, "
             f"{time.perf_counter() - started:.1f} s")
        if request.verify:
            try:
                backend, results = verify(model, exported, request.audio, request.device, request.threads)
            except VerificationError as exc:
                raise VerificationError(f"{exc}; {request.output} was not written (--no-verify writes "
                                        "an export unchecked)") from None
            report_verification(backend.device, backend.precision, request.audio, results, echo)
            if request.labelled:
                report_map(model, backend, request.labelled, echo)
        else:
            echo("verification skipped (--no-verify)")
        publish(exported, request.output)
    echo(f"wrote {request.output}")


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
    from tagger.torch_backend import TorchBackend
    from tagger.tagging import WindowSettings

    def score(candidate: Backend) -> EvalResult:
        return evaluate_dataset(candidate, str(labelled), ManifestFormat(), WindowSettings(),
                                batch_size=None, pooling="max")

    reference = score(TorchBackend(model, device="cpu"))
    exported = score(backend)
    change = exported.metrics.mAP - reference.metrics.mAP
    echo(f"mAP on {reference.clips} labelled clips: PyTorch fp32 {reference.metrics.mAP:.4f}, "
         f"ONNX {backend.precision} {exported.metrics.mAP:.4f} (change {change:+.4f})")

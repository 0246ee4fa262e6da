"""The ``tagger`` command line. Heavy imports (torch) happen inside the commands that need them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Optional

import typer
from typer.exceptions import TyperException
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from . import __version__
from .errors import TaggerError

if TYPE_CHECKING:
    from .tagging import Backend, WindowSettings

class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class Pooling(str, Enum):
    max = "max"
    mean = "mean"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus", ".w64"}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Tag sounds in audio files with PaSST (Patchout faSt Spectrogram Transformer).",
)
stderr = Console(stderr=True, highlight=False)


def error_line(message: str) -> None:
    """One line on stderr, never wrapped or styled."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    sys.stderr.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    error_line(message)
    return typer.Exit(code)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tagger {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Tag sounds in audio files with PaSST (Patchout faSt Spectrogram Transformer)."""


def expand_paths(paths: list[Path]) -> Iterator[tuple[str, str | None]]:
    """Yield (path, error): files as given, directories searched recursively for audio files."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                yield str(path), f"{path}: no audio files in this directory"
            for child in found:
                yield str(child), None
        elif path.exists():
            yield str(path), None
        else:
            yield str(path), f"{path}: no such file or directory"


@contextmanager
def open_output(output: Optional[Path]) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    try:
        handle = open(output, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise TaggerError(f"{output}: cannot write ({exc.strerror})") from None
    with handle:
        yield handle


def make_progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(), console=stderr, transient=True, disable=not enabled,
    )


@app.command("file")
def file_command(
    paths: list[Path] = typer.Argument(..., help="Audio files or directories (searched recursively).",
                                       show_default=False, metavar="PATH"),
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help="Model file (.pt) or a name from `tagger models` (default: passt-s-swa, downloaded on first use)."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the results to this file instead of stdout."),
    top: int = typer.Option(5, "--top-k", "-k", min=1,
                            help="Labels in the table and in the JSON 'top' list (JSON and CSV keep every class)."),
    window: Optional[float] = typer.Option(None, "--window",
                                           help="Window length in seconds (default: the model's context)."),
    hop: Optional[float] = typer.Option(None, "--hop", help="Hop between windows in seconds (default: half the window)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Windows per model call."),
    pooling: Pooling = typer.Option(Pooling.max, "--pooling", help="Clip score from the windows' scores."),
    precision: Precision = typer.Option(Precision.fp32, "--precision",
                                        help="fp32 (the reference numbers) or bf16 (faster on AMX CPUs and GPUs)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for inference (default: PyTorch's choice)."),
    num_heads: Optional[int] = typer.Option(None, "--num-heads", min=1,
                                            help="Attention heads of an official checkpoint (default: embed_dim / 64; tagger model files know theirs)."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show progress bars (tagging: only on a terminal; model download) on stderr."),
) -> None:
    """Tag audio files (wav, flac, ogg, mp3, ...; any rate, channels and length)."""
    for value, option in ((window, "--window"), (hop, "--hop")):
        if value is not None and value <= 0:
            raise fail(f"{option} must be longer than 0 s", code=2)
    from .inference import TorchBackend
    from .loading import load_model
    from .tagging import WindowSettings

    loaded = load_model(model, num_heads=num_heads, show_progress=progress)
    settings = WindowSettings(window, hop)
    try:
        backend = TorchBackend(loaded, device=device, precision=precision.value, threads=threads)
        settings.resolve(backend)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    failures = tag_files(list(expand_paths(paths)), backend, settings, output_format.value, output,
                         top, batch_size, pooling.value, progress and stderr.is_terminal)
    if failures:
        raise typer.Exit(1)


def tag_files(targets: list[tuple[str, str | None]], backend: "Backend", settings: "WindowSettings",
              output_format: str,
              output: Optional[Path], top: int, batch_size: int, pooling: str,
              show_progress: bool) -> int:
    """Tag every target into one sink; report each failure in one line; return how many failed."""
    from .output import RunInfo, make_sink
    from .tagging import tag_file

    window, hop = settings.resolve(backend)
    rate = backend.sample_rate
    run = RunInfo(model=backend.name, labels=backend.labels, sample_rate=rate, window=window / rate,
                  hop=hop / rate, pooling=pooling)
    failures = 0
    with open_output(output) as stream, make_progress(show_progress) as bar:
        total = sum(_known_duration(path) for path, problem in targets if not problem) if show_progress else 0
        task = bar.add_task("tagging", total=total or None)
        sink = make_sink(output_format, stream, run, top)
        for path, problem in targets:
            bar.update(task, description=Path(path).name)
            try:
                if problem:
                    raise TaggerError(problem)
                result = tag_file(path, backend, settings, batch_size, pooling,
                                  on_samples=lambda n: bar.advance(task, n / rate))
            except TaggerError as exc:
                failures += 1
                error_line(str(exc))
                sink.add_error(path, str(exc))
                continue
            sink.add(result)
        sink.close()
    return failures


def _known_duration(path: str) -> float:
    """Seconds of audio in a file by its header, 0 when unknown or unreadable (progress bars only)."""
    from .audio import probe

    try:
        return probe(path).duration or 0.0
    except TaggerError:
        return 0.0


@app.command("models")
def models_command() -> None:
    """List the models that --model accepts by name."""
    from rich.table import Table

    from .loading import default_model_name
    from .registry import MODELS, cache_dir

    table = Table(title=f"Models (downloaded on first use into {cache_dir()})", title_justify="left")
    table.add_column("name")
    table.add_column("context", justify="right")
    table.add_column("cached")
    table.add_column("description")
    for name, remote in MODELS.items():
        cached = "yes" if (cache_dir() / remote.filename).is_file() else "no"
        label = f"{name} (default)" if name == default_model_name() else name
        table.add_row(label, f"{remote.context_seconds:g} s", cached, remote.description)
    Console().print(table)


def main() -> None:
    """Console entry point: user errors are one line on stderr, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except TyperException as exc:  # usage errors (bad option or value), exit code 2
        error_line(f"{exc.format_message()} (see tagger --help)")
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        error_line("interrupted")
        sys.exit(130)
    except TaggerError as exc:
        error_line(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)
    except Exception as exc:  # last resort: keep the promise of no tracebacks
        if os.environ.get("TAGGER_DEBUG"):
            raise
        error_line(f"unexpected {type(exc).__name__}: {exc} (set TAGGER_DEBUG=1 for details)")
        sys.exit(1)
    sys.exit(code or 0)

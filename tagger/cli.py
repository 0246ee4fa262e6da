"""The ``tagger`` command line. Heavy imports (torch) happen inside the commands that need them."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Optional

import typer
from typer.exceptions import TyperException
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from . import __version__
from .augment import CONDITIONS_HELP
from .backends import DEVICE_HELP
from .errors import TaggerError
from .options import (MAX_OPSET, MIN_OPSET, TableFormat, ExportFrontend, ListenFormat, OutputFormat, Pooling,
                      Precision, ReportFormat, Runtime, Task, TrainPrecision, options_from)

if TYPE_CHECKING:
    from .backends import Backend
    from .bulk import BulkOptions
    from .files import Target
    from .output import RunInfo, Sink
    from .tagging import FileResult, WindowSettings


app = typer.Typer(
    add_completion=True,  # --install-completion and --show-completion for bash, zsh, fish, PowerShell
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Tag sounds in audio files with PaSST (Patchout faSt Spectrogram Transformer).",
)
stderr = Console(stderr=True, highlight=False)

# Options that several commands take, each defined once.
WINDOW = typer.Option(None, "--window", help="Window length in seconds (default: the model's context).")
HOP = typer.Option(None, "--hop", help="Hop between windows in seconds (default: half the window).")
BATCH_SIZE = typer.Option(None, "--batch-size", min=1,
                          help="Windows per model call (default: 1 on a CPU, where batches are slower; 8 on a GPU).")
POOLING = typer.Option(Pooling.max, "--pooling", help="Clip score from the windows' scores.")
PRECISION = typer.Option(Precision.fp32, "--precision",
                         help="fp32 (the reference numbers), bf16 (PyTorch), int8 (a cached int8 ONNX Runtime graph) "
                              "or fast (the faster of bf16 and int8 on this hardware, within 5e-3 of fp32).")
# Events (tagger listen, tagger file --events and the event formats).
THRESHOLD = typer.Option(None, "--threshold", show_default=False,
                         help="Probability at which a sound event starts, for every label (default: the model's own "
                              "thresholds where it carries them, else 0.5).")
LABEL_THRESHOLDS = typer.Option(None, "--label-threshold", metavar="LABEL=P", help="Threshold for one label (repeatable).")
OFFSET_RATIO = typer.Option(0.7, "--offset-ratio",
                            help="An event ends when its probability falls below threshold x this ratio (hysteresis).")
MIN_DURATION = typer.Option(0.0, "--min-duration", min=0.0, help="Report an event only once it has lasted this many seconds.")
THRESHOLDS = typer.Option(None, "--thresholds", metavar="FILE",
                          help="Per-label thresholds (CSV label,threshold or JSON), e.g. from tagger calibrate; "
                               "--label-threshold overrides them.")
SMOOTH = typer.Option(1, "--smooth", min=1, help="Average the probabilities of the last N windows (1: off).")
ONLY = typer.Option(None, "--only", metavar="LABEL",
                    help="Report only this label (repeatable; tagger file: in its events).")
EXCLUDE = typer.Option(None, "--exclude", metavar="LABEL",
                       help="Never report this label (repeatable; tagger file: in its events).")
ROLLUP = typer.Option(False, "--rollup",
                      help="Add the AudioSet ontology's parent classes of the model's labels (score: the highest "
                           "label under each), e.g. Animal, Domestic animals, pets.")
VERBOSE = typer.Option(False, "--verbose", "-v",
                       help="Say on stderr which runtime, precision and device run the model, and why.")
COMPUTE_DEVICE_HELP = DEVICE_HELP + "."
DEVICE = typer.Option("auto", "--device", help=COMPUTE_DEVICE_HELP)
THREADS = typer.Option(None, "--threads", min=1,
                       help="CPU threads for inference (default: PyTorch's or ONNX Runtime's choice).")
RUNTIME = typer.Option(Runtime.auto, "--backend",
                       help="Runtime of a PyTorch model: auto (its cached ONNX Runtime graph on the CPU in fp32, "
                            "made on first use; else PyTorch), torch or onnx.")
NUM_HEADS = typer.Option(None, "--num-heads", min=1,
                         help="Attention heads of an official checkpoint (default: embed_dim / 64; tagger model files know theirs).")
PATH_COLUMN = typer.Option("path", "--path-column",
                           help="Column with the audio paths in a CSV manifest or list (relative to its folder).")
LABELS_COLUMN = typer.Option("labels", "--labels-column", help="Manifest column with the labels.")
DELIMITER = typer.Option(",", "--delimiter", help="Field separator of the manifest.")
LABEL_SEPARATOR = typer.Option(",", "--label-separator", help="Separator between the labels of one clip.")


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


class _Discard(Exception):
    """Leave the output's old file as it was: the command was interrupted before finishing anything."""


@contextmanager
def open_output(output: Optional[Path], finished: Callable[[], bool] = lambda: True) -> Iterator[IO[str]]:
    """stdout, or a temporary file beside ``output`` that replaces it when the block ends, so an old
    file stays whole until then. On Ctrl-C or SIGTERM the command closes its output first: what it
    finished replaces the old file, or, when ``finished()`` says nothing was, the old file stays."""
    if output is None:
        yield sys.stdout
        return
    if output.exists() and not output.is_file():  # a device, FIFO or terminal: write to it as it is
        with written_in_place(output, "w") as handle:
            yield handle
        return
    from .atomic import atomic_write

    interrupted: KeyboardInterrupt | None = None
    try:
        with atomic_write(output, "w", newline="") as handle:
            try:
                yield handle
            except KeyboardInterrupt as exc:
                interrupted = exc
                if not finished():
                    raise _Discard() from None
    except _Discard:
        error_line(f"interrupted before any result: {output} left as it was")
    except OSError as exc:
        raise TaggerError(f"{output}: cannot write ({exc.strerror or exc})") from None
    else:
        if interrupted is not None:
            error_line(f"interrupted: {output} holds the results finished so far")
    if interrupted is not None:
        raise interrupted


def make_progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(), console=stderr, transient=True, disable=not enabled,
    )


@app.command("file")
def file_command(
    paths: Optional[list[Path]] = typer.Argument(None, help="Audio files or directories (searched recursively).",
                                                 show_default=False, metavar="PATH"),
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help="Model file (.pt, or .onnx from `tagger export`: run with ONNX Runtime) or a name from `tagger models` (default: the embedded offline-50)."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the results to this file instead of stdout."),
    top: int = typer.Option(5, "--top-k", "-k", min=1,
                            help="Labels in the table and in the JSON 'top' list (JSON and CSV keep every class)."),
    window: Optional[float] = WINDOW,
    hop: Optional[float] = HOP,
    batch_size: Optional[int] = BATCH_SIZE,
    pooling: Pooling = POOLING,
    precision: Precision = PRECISION,
    device: str = DEVICE,
    runtime: Runtime = RUNTIME,
    threads: Optional[int] = THREADS,
    num_heads: Optional[int] = NUM_HEADS,
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show progress bars (tagging: only on a terminal; model download) on stderr."),
    verbose: bool = VERBOSE,
    events: bool = typer.Option(False, "--events",
                                help="Also report sound events (onset, offset, peak), decoded as tagger listen does "
                                     "(the audacity, raven and webvtt formats always do)."),
    threshold: Optional[float] = THRESHOLD,
    label_thresholds: Optional[list[str]] = LABEL_THRESHOLDS,
    thresholds: Optional[Path] = THRESHOLDS,
    offset_ratio: float = OFFSET_RATIO,
    min_duration: float = MIN_DURATION,
    smooth: int = SMOOTH,
    only: Optional[list[str]] = ONLY,
    exclude: Optional[list[str]] = EXCLUDE,
    rollup: bool = ROLLUP,
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="PNG",
                                        help=escape("Also draw the top labels over time and the events as a PNG "
                                                    "(one file; needs matplotlib: tagger[plot]).")),
    from_list: Optional[Path] = typer.Option(
        None, "--from-list", metavar="FILE",
        help="Also tag the files a list names: one path per line, or a .csv file's --path-column; relative paths "
             "from the list's folder; - reads stdin."),
    path_column: str = PATH_COLUMN,
    delimiter: str = DELIMITER,
    resume: bool = typer.Option(False, "--resume",
                                help="Add to the -o output (jsonl or parquet) as each file finishes, skipping the "
                                     "inputs it already holds: run the same command again after an interruption."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N",
                                        help="Tag only share K of N (1 <= K <= N) of the inputs, chosen by a hash of "
                                             "each path (job arrays)."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0,
                             help="Processes that decode and resample the next files while the model runs "
                                  "(0: decode in the tagging process)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS",
                                      help=escape("Tag on Ray Data: local (start Ray here), auto (the cluster this "
                                                  "machine joined) or ray://HOST:PORT; needs tagger[ray].")),
    ray_actors: int = typer.Option(1, "--ray-actors", min=1,
                                   help="Model replicas on Ray (one GPU each when the cluster has enough)."),
) -> None:
    """Tag audio files (wav, flac, ogg, mp3, ...; any rate, channels and length)."""
    from .bulk import bulk_targets
    from .events import EventDecoder, EventOptions
    from .files import probe_targets
    from .options import EVENT_FORMATS, SINGLE_FILE_FORMATS

    parameters = dict(locals())
    event_options = None
    if plot is not None:
        from .plot import require_matplotlib

        try:
            require_matplotlib()
        except TaggerError as exc:
            raise fail(str(exc), code=2) from None
    if events or plot is not None or output_format.value in EVENT_FORMATS:
        if output_format == OutputFormat.csv:
            raise fail("-f csv holds the windows' probabilities; events go to table, json, jsonl, parquet, "
                       "audacity, raven or webvtt", code=2)
        event_options = options_from(EventOptions, parameters)
    bulk = check_bulk_options(parameters)
    targets = bulk_targets(paths or [], bulk) if bulk.active else probe_targets(paths or [])
    folder = None
    if output_format.value in SINGLE_FILE_FORMATS and len(targets) > 1:
        if output is None or (output.exists() and not output.is_dir()):
            raise fail(f"-f {output_format.value} describes one audio file and {len(targets)} were given: name a "
                       "folder with -o for one file each, or use -f raven (a file column)", code=2)
        folder = output
    if plot is not None and len(targets) > 1:
        raise fail(f"--plot draws one audio file and {len(targets)} were given", code=2)
    backend, settings = open_windowed_backend(model, device, precision, runtime, threads, num_heads, progress,
                                              window, hop, verbose)
    if rollup:
        from .ontology import RollupBackend

        backend = RollupBackend(backend)
    if event_options is not None:
        try:
            EventDecoder(backend.labels, event_options, 1.0, backend.thresholds)  # checked before any work
        except ValueError as exc:
            raise fail(str(exc), code=2) from None
    run = run_info(backend, settings, pooling.value)
    if bulk.resume:
        targets = skip_finished(targets, run, backend.thresholds, bulk)
    if bulk.ray:
        from .ray_tagging import ModelSpec, connect, tag_files_on_ray

        connect(bulk.ray)
        spec = options_from(ModelSpec, parameters)

        def tag(targets, reporter):
            return tag_files_on_ray(targets, spec, backend.sample_rate, settings, batch_size, pooling.value,
                                    reporter, event_options, bulk.ray_actors)
    else:
        from .files import tag_files

        def tag(targets, reporter):
            return tag_files(targets, backend, settings, batch_size, pooling.value, reporter, event_options,
                             bulk.jobs)
    failures = write_results(targets, tag, run, backend.thresholds, output_format.value, output, top,
                             progress and stderr.is_terminal, plot=plot and (plot, threshold), folder=folder,
                             bulk=bulk)
    if failures:
        raise typer.Exit(1)


def open_backend(model: Optional[str], device: str, precision: Precision, runtime: Runtime,
                 threads: Optional[int], num_heads: Optional[int] = None, progress: bool = True,
                 verbose: bool = False) -> "Backend":
    """:func:`tagger.backends.load_backend` for a command: bad option values are usage errors;
    ``verbose`` says on stderr what runs the model."""
    from .backends import describe, load_backend

    try:
        backend = load_backend(model, device, precision.value, threads, num_heads, progress, runtime.value)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    if verbose:
        stderr.print(describe(backend), markup=False, soft_wrap=True)
    return backend


def open_windowed_backend(model: Optional[str], device: str, precision: Precision, runtime: Runtime,
                          threads: Optional[int], num_heads: Optional[int], progress: bool,
                          window: Optional[float], hop: Optional[float],
                          verbose: bool = False) -> tuple["Backend", "WindowSettings"]:
    """:func:`open_backend` and the --window/--hop settings checked against its model."""
    from .tagging import WindowSettings

    backend = open_backend(model, device, precision, runtime, threads, num_heads, progress, verbose)
    settings = WindowSettings(window, hop)
    try:
        settings.resolve(backend)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    return backend, settings


def check_bulk_options(parameters: dict) -> "BulkOptions":
    """The bulk-run options of ``tagger file``, checked before any work (usage errors)."""
    from .bulk import BulkOptions

    options = options_from(BulkOptions, parameters)
    if not parameters["paths"] and options.from_list is None:
        raise fail("give audio files or folders, or --from-list FILE", code=2)
    try:
        options.check()
        if options.output_format == "parquet":
            from .parquet_output import require_pyarrow

            require_pyarrow()
        if options.ray:
            from .ray_tagging import require_ray

            require_ray()
    except (ValueError, TaggerError) as exc:
        raise fail(str(exc), code=2) from None
    return options


def skip_finished(targets: list["Target"], run: "RunInfo", thresholds: dict[str, float],
                  options: "BulkOptions") -> list["Target"]:
    """--resume: the targets the output does not hold yet; says how many it holds on stderr."""
    from .bulk import finished_inputs

    done = finished_inputs(options, run, thresholds)
    remaining = [t for t in targets if t.path not in done]
    if len(remaining) < len(targets):
        sys.stderr.write(f"resuming: {len(targets) - len(remaining)} of {len(targets)} inputs are already in "
                         f"{options.output}\n")
    return remaining


def run_info(backend: "Backend", settings: "WindowSettings", pooling: str) -> "RunInfo":
    from .output import RunInfo

    window, hop = settings.resolve(backend)
    rate = backend.sample_rate
    return RunInfo(model=backend.name, labels=backend.labels, sample_rate=rate, window=window / rate,
                   hop=hop / rate, pooling=pooling)


class FileReporter:
    """How ``tagger file`` reports: results into the sink, failures and warnings as lines on stderr,
    and a progress bar (on a terminal) over the seconds of audio, or over the files in bulk runs
    (their lengths are read only when each file's turn comes)."""

    def __init__(self, sink: "Sink", bar: Progress, targets: list["Target"], shares_terminal: bool,
                 per_file: bool = False) -> None:
        self.sink, self.bar, self.shares_terminal, self.per_file = sink, bar, shares_terminal, per_file
        total = len(targets) if per_file else sum(t.seconds for t in targets)
        self.task = bar.add_task("tagging", total=total or None)
        self.done = 0

    def starting(self, target: "Target") -> None:
        self.bar.update(self.task, description=Path(target.path).name)

    def advanced(self, seconds: float) -> None:
        if not self.per_file:
            self.bar.advance(self.task, seconds)

    def finished(self, result: "FileResult") -> None:
        for warning in result.warnings:
            sys.stderr.write(f"warning: {result.path}: {warning}\n")
        if self.shares_terminal:  # clear the bar's line before the results print
            self.bar.stop()
            self.sink.add(result)
            self.bar.start()
        else:
            self.sink.add(result)
        self._count()

    def failed(self, path: str, message: str) -> None:
        error_line(message)
        self.sink.add_error(path, message)
        self._count()

    def _count(self) -> None:
        self.done += 1
        if self.per_file:
            self.bar.advance(self.task, 1)


def write_results(targets: list["Target"], tag: "Callable[[list[Target], FileReporter], int]", run: "RunInfo",
                  thresholds: dict[str, float], output_format: str, output: Optional[Path], top: int,
                  show_progress: bool, plot: "tuple[Path, float] | None" = None, folder: Optional[Path] = None,
                  bulk: "BulkOptions | None" = None) -> int:
    """Tag every target with ``tag`` into one output document (or, with ``folder``, one file per
    target; -f parquet: a folder of parts; --resume: appended to the output); return how many failed."""
    from .output import FolderSink, make_sink

    per_file = bulk is not None and bulk.active
    reporter: FileReporter | None = None
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TaggerError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
        with make_progress(show_progress) as bar:
            return tag(targets, FileReporter(FolderSink(folder, output_format, run, top), bar, targets, False,
                                             per_file))
    if output_format == "parquet":
        from .parquet_output import ParquetSink

        assert output is not None and bulk is not None
        sink = ParquetSink(output, run, thresholds, bulk.part_prefix)
        with make_progress(show_progress) as bar:
            try:
                return tag(targets, FileReporter(sink, bar, targets, False, per_file))
            finally:  # also on Ctrl-C or SIGTERM: the files finished so far become a part
                sink.close()
    opened = written_in_place(output, "a") if bulk is not None and bulk.resume else \
        open_output(output, finished=lambda: reporter is not None and reporter.done > 0)
    with opened as stream, make_progress(show_progress) as bar:
        sink = make_sink(output_format, stream, run, top)
        if plot:
            from .plot import PlotSink

            sink = PlotSink(sink, list(run.labels), top, plot[1], plot[0])
        reporter = FileReporter(sink, bar, targets, show_progress and output is None, per_file)
        try:
            return tag(targets, reporter)
        finally:  # also on Ctrl-C or SIGTERM: a complete document of the files finished so far
            sink.close()


@contextmanager
def written_in_place(output: Path, mode: str) -> Iterator[IO[str]]:
    """``output`` opened as it is (``w``: a device or FIFO; ``a``: --resume appends, each line
    flushed as its file finishes); write errors become one-line errors."""
    try:
        handle = open(output, mode, encoding="utf-8", newline="")
    except OSError as exc:
        raise TaggerError(f"{output}: cannot write ({exc.strerror or exc})") from None
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise TaggerError(f"{output}: cannot write ({exc.strerror or exc})") from None


@app.command("models")
def models_command() -> None:
    """List the models that --model accepts by name: the embedded default and the official PaSST ones."""
    from rich.table import Table

    from .embedded import DESCRIPTION, EMBEDDED_MODEL
    from .loading import default_model_name
    from .registry import MODELS, cache_dir

    table = Table(title=f"Models (official ones are downloaded on first use into {cache_dir()})",
                  title_justify="left")
    table.add_column("name")
    table.add_column("context", justify="right")
    table.add_column("classes", justify="right")
    table.add_column("available")
    table.add_column("description")

    def label(name: str) -> str:
        return f"{name} (default)" if name == default_model_name() else name

    table.add_row(label(EMBEDDED_MODEL), "10 s", "50", "built in", DESCRIPTION)
    for name, remote in MODELS.items():
        cached = "cached" if (cache_dir() / remote.filename).is_file() else "download"
        table.add_row(label(name), f"{remote.context_seconds:g} s", "527", cached, remote.description)
    Console().print(table)


@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="Model file (.pt) or a name from `tagger models`.",
                                show_default=False, metavar="MODEL"),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", show_default=False,
        help="The ONNX file to write, ending in .onnx (default: MODEL's name + .onnx, -int8/-fp16 marked, here)."),
    int8: bool = typer.Option(False, "--int8", help="Dynamic int8 quantization of the transformer's weight matrices (CPU)."),
    fp16: bool = typer.Option(False, "--fp16", help="Float16 transformer for CUDA; input, output and front-end stay float32."),
    verify: bool = typer.Option(True, "--verify/--no-verify",
                                help="Compare ONNX Runtime with PyTorch after the export; fail beyond the tolerance."),
    audio: Optional[list[Path]] = typer.Option(None, "--audio",
                                               help="Audio file to verify on (repeatable; default: a built-in synthetic signal)."),
    labelled: Optional[Path] = typer.Option(None, "--labelled",
                                            help="Labelled data as `tagger eval` reads it: also report both models' mAP."),
    frontend: ExportFrontend = typer.Option(ExportFrontend.dft, "--frontend",
                                          help="STFT in the graph: dft (a strided Conv, faster) or stft (the ONNX STFT op)."),
    opset: int = typer.Option(MIN_OPSET, "--opset", min=MIN_OPSET, max=MAX_OPSET, help="ONNX opset version."),
    num_heads: Optional[int] = typer.Option(None, "--num-heads", min=1,
                                            help="Attention heads of an official checkpoint (default: embed_dim / 64)."),
    device: str = typer.Option("auto", "--device", help="Where the verification runs ONNX Runtime: auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for the verification."),
) -> None:
    """Export a model to one ONNX file (waveform in, probabilities and embedding out) and verify it."""
    parameters = dict(locals())
    if int8 and fp16:
        raise fail("--int8 and --fp16 exclude each other", code=2)
    variant = "int8" if int8 else "fp16" if fp16 else "fp32"
    if output is None:
        name = Path(model).stem if Path(model).is_file() else Path(model).name
        output = Path(name + ("" if variant == "fp32" else f"-{variant}") + ".onnx")
    if output.suffix.lower() != ".onnx":
        raise fail(f"{output}: the output name must end in .onnx (tagger file recognises ONNX models by it)",
                   code=2)
    from tagger_export.command import ExportRequest, run_export

    request = options_from(ExportRequest, parameters, output=output, precision=variant)
    try:
        run_export(request, typer.echo)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None


@app.command("train")
def train_command(
    data: Optional[Path] = typer.Argument(
        None, help="CSV manifest or folder of class folders (DATA/<label>/*.wav); may be left out with --resume.",
        show_default=False),
    out: Path = typer.Option(Path("runs/tagger"), "--out", help="Folder for last.pt, best.pt, swa.pt and metrics.jsonl."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped (its own options are used)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation manifest or class folders (default: split off --val-split)."),
    val_split: float = typer.Option(0.1, "--val-split", help="Fraction of DATA held out for validation (stratified, seeded) without --val."),
    labels_file: Optional[Path] = typer.Option(None, "--labels", help="Label vocabulary file, one label per line (default: the labels in the data)."),
    path_column: str = PATH_COLUMN,
    labels_column: str = LABELS_COLUMN,
    delimiter: str = DELIMITER,
    label_separator: str = LABEL_SEPARATOR,
    task: Task = typer.Option(Task.auto, "--task", help="multi-label (sigmoid + BCE), single-label (softmax + CE) or auto (single-label when every clip has one label)."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from this model (file or `tagger models` name; default: the embedded offline-50), with a new head for the data's labels."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Start from random weights instead of a pretrained model (also implied by --arch, --embed-dim, --depth or --context)."),
    freeze_backbone: bool = typer.Option(False, "--freeze-backbone", help="Train only the head."),
    backbone_lr_scale: float = typer.Option(1.0, "--backbone-lr-scale", help="Learning rate of the backbone relative to the head's."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Size of a new model: passt-s, passt-small, passt-tiny (default) or passt-mini."),
    embed_dim: Optional[int] = typer.Option(None, "--embed-dim", min=1, help="Override the embedding width of --arch."),
    depth: Optional[int] = typer.Option(None, "--depth", min=1, help="Override the number of blocks of --arch."),
    num_heads: Optional[int] = typer.Option(None, "--num-heads", min=1, help="Override the attention heads of --arch (with --init: the heads of an official checkpoint)."),
    context: Optional[float] = typer.Option(None, "--context", help="Context of a new model in seconds, its time positional grid (default: the window chosen from the data)."),
    window: Optional[float] = typer.Option(None, "--window", help="Training crop in seconds (default: long enough for 90% of the clips, at most the model's context)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Passes over the training data (default: 10 fine-tuning; from scratch, enough for 600 updates). With --resume: extend the run to this many."),
    batch_size: int = typer.Option(12, "--batch-size", min=1, help="Clips per step and process."),
    accumulate: int = typer.Option(1, "--accumulate", min=1, help="Steps whose gradients are summed before an update."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate of AdamW (default: 5e-4 fine-tuning, 1e-3 from scratch)."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="AdamW weight decay (not on biases, norms, tokens, positions)."),
    warmup_epochs: float = typer.Option(1.0, "--warmup-epochs", help="Linear warm-up length in epochs, then linear decay to 1%."),
    clip_grad: float = typer.Option(0.0, "--clip-grad", help="Clip the gradient norm to this value (0: off)."),
    patchout_t: Optional[int] = typer.Option(None, "--patchout-t", min=0, help="Time-patch columns dropped per step (default: 40 per 10 s of window)."),
    patchout_f: int = typer.Option(0, "--patchout-f", min=0, help="Frequency-patch rows dropped per step (PaSST-S: 4 of 12; off by default, it hides sounds that live in a few bands)."),
    u_patchout: int = typer.Option(0, "--u-patchout", min=0, help="Further random patches dropped per step (unstructured patchout)."),
    mixup: float = typer.Option(0.3, "--mixup", help="Mixup of spectrograms with lambda ~ Beta(a, a), max(l, 1-l) (0: off)."),
    gain: bool = typer.Option(True, "--gain/--no-gain", help="Random gain of -7..+6 dB per clip."),
    roll: float = typer.Option(0.25, "--roll", help="Random circular shift of up to this many seconds (0: off)."),
    conditions: float = typer.Option(0.0, "--conditions", min=0.0, max=1.0, help=escape(CONDITIONS_HELP)),
    spec_augment: bool = typer.Option(False, "--spec-augment/--no-spec-augment", help="Front-end train mode: mel band-edge jitter and frequency/time masks (PaSST's recipe; off by default, frequency masks hide sounds that live in a few bands)."),
    weighted_sampling: bool = typer.Option(True, "--weighted-sampling/--no-weighted-sampling", help="Draw clips of rare labels more often."),
    swa_start: Optional[int] = typer.Option(None, "--swa-start", min=1, help="Average the weights of this epoch and later into swa.pt."),
    precision: TrainPrecision = typer.Option(TrainPrecision.auto, "--precision", help="auto: bf16 on CUDA and bf16-capable CPUs, fp16 on older GPUs, else fp32."),
    device: str = DEVICE,
    workers: int = typer.Option(2, "--workers", min=0, help="Data-loading processes per training process."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads per process."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the data order, augmentation and initial weights."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Keep decoded, resampled training audio here (float16 .npy) for later epochs and runs."),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", min=0, help="Also save last.pt every N updates (0: at the end of each epoch only)."),
    max_bad: float = typer.Option(0.1, "--max-bad", help="Share of the training (or validation) clips that may fail to decode, be skipped and named, before the run stops."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name stored in the files (default: the --out folder's name)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr (only on a terminal)."),
) -> None:
    """Train or fine-tune a tagger on your own labelled audio (the PaSST recipe)."""
    parameters = dict(locals())
    from .data import ManifestFormat
    from .train import TrainOptions, train

    if data is None and not resume:
        raise fail("DATA is required (unless --resume)", code=2)
    sized = [option for option, value in (("--arch", arch), ("--embed-dim", embed_dim), ("--depth", depth),
                                          ("--context", context)) if value is not None]
    if init is not None and (from_scratch or sized):
        raise fail(f"--init and {'--from-scratch' if from_scratch else sized[0]} exclude each other "
                   "(size options describe a new model from random weights)", code=2)
    opts = options_from(TrainOptions, parameters, data=str(data or ""), from_scratch=from_scratch or bool(sized),
                        manifest=ManifestFormat(path_column, labels_column, delimiter, label_separator))
    result = train(opts, resume=resume, console=stderr)
    if int(os.environ.get("RANK", "0")) == 0:
        best = result["best_mAP"]
        typer.echo(f"best validation mAP {best:.4f}; model files in {result['out']}")


@app.command("eval")
def eval_command(
    model: str = typer.Argument(..., help="Model file (.pt, or .onnx from `tagger export`) or a name from `tagger models`.", show_default=False),
    data: Path = typer.Argument(..., help="CSV manifest or folder of class folders with the true labels.",
                                show_default=False),
    path_column: str = PATH_COLUMN,
    labels_column: str = LABELS_COLUMN,
    delimiter: str = DELIMITER,
    label_separator: str = LABEL_SEPARATOR,
    output_format: ReportFormat = typer.Option(ReportFormat.json, "--format", "-f", help="Format of --output."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write overall and per-class numbers to this file."),
    top: Optional[int] = typer.Option(None, "--top", min=1, help="Show only the N best classes in the table (default: all)."),
    window: Optional[float] = WINDOW,
    hop: Optional[float] = HOP,
    batch_size: Optional[int] = BATCH_SIZE,
    pooling: Pooling = POOLING,
    precision: Precision = PRECISION,
    device: str = DEVICE,
    runtime: Runtime = RUNTIME,
    threads: Optional[int] = THREADS,
    num_heads: Optional[int] = NUM_HEADS,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr (only on a terminal)."),
    verbose: bool = VERBOSE,
) -> None:
    """Score a model on labelled audio: overall and per-class average precision."""
    from .data import ManifestFormat
    from .evaluate import evaluate_dataset, print_report, write_report

    backend, settings = open_windowed_backend(model, device, precision, runtime, threads, num_heads, progress,
                                              window, hop, verbose)
    fmt = ManifestFormat(path_column, labels_column, delimiter, label_separator)
    with make_progress(progress and stderr.is_terminal) as bar:
        task = bar.add_task("evaluating", total=None)
        result = evaluate_dataset(backend, str(data), fmt, settings, batch_size,
                                  pooling.value, on_clip=lambda: bar.advance(task))
    for bad in result.skipped:
        sys.stderr.write(f"warning: {bad.path}: {bad.reason} (left out)\n")
    print_report(result, Console(), top)
    if output is not None:
        with open_output(output) as stream:
            write_report(result, output_format.value, stream)


@app.command("calibrate")
def calibrate_command(
    model: str = typer.Argument(..., help="Model file (.pt, or .onnx from `tagger export`) or a name from `tagger models`.", show_default=False),
    data: Path = typer.Argument(..., help="CSV manifest or folder of class folders with the true labels.",
                                show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the thresholds CSV here (default: standard output)."),
    min_precision: float = typer.Option(0.0, "--min-precision", min=0.0, max=1.0,
                                        help="Only thresholds whose precision on DATA is at least this."),
    path_column: str = PATH_COLUMN,
    labels_column: str = LABELS_COLUMN,
    delimiter: str = DELIMITER,
    label_separator: str = LABEL_SEPARATOR,
    window: Optional[float] = WINDOW,
    hop: Optional[float] = HOP,
    batch_size: Optional[int] = BATCH_SIZE,
    pooling: Pooling = POOLING,
    precision: Precision = PRECISION,
    device: str = DEVICE,
    runtime: Runtime = RUNTIME,
    threads: Optional[int] = THREADS,
    num_heads: Optional[int] = NUM_HEADS,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr (only on a terminal)."),
) -> None:
    """Fit one threshold per label on labelled audio (the best F1, optionally at a minimum precision)
    and write them for --thresholds."""
    from .data import ManifestFormat
    from .evaluate import labelled_scores
    from .thresholds import fit_thresholds, write_thresholds

    backend, settings = open_windowed_backend(model, device, precision, runtime, threads, num_heads, progress,
                                              window, hop)
    fmt = ManifestFormat(path_column, labels_column, delimiter, label_separator)
    with make_progress(progress and stderr.is_terminal) as bar:
        task = bar.add_task("scoring", total=None)
        scores, truth, skipped = labelled_scores(backend, str(data), fmt, settings, batch_size, pooling.value,
                                                 on_clip=lambda: bar.advance(task))
    for bad in skipped:
        sys.stderr.write(f"warning: {bad.path}: {bad.reason} (left out)\n")
    fitted = fit_thresholds(backend.labels, scores, truth, min_precision)
    missing = [f.label for f in fitted if f.threshold is None]
    if missing:
        reason = "no positive clip" if min_precision == 0 else f"no positive clip, or no threshold with precision {min_precision:g}"
        sys.stderr.write(f"note: {len(missing)} label(s) left out ({reason}), e.g. {', '.join(missing[:3])}\n")
    with open_output(output) as stream:
        write_thresholds(fitted, stream)


@app.command("listen")
def listen_command(
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help="Model file (.pt or .onnx) or a name from `tagger models` (default: the embedded offline-50)."),
    device: Optional[str] = typer.Option(None, "--device", "-d",
                                         help="Input device: index or (part of the) name from `tagger devices` (default: the system's default input)."),
    input_path: Optional[Path] = typer.Option(None, "--input", "-i",
                                              help="Play this audio file through the live engine at real-time pace instead of capturing."),
    output_format: ListenFormat = typer.Option(ListenFormat.auto, "--format", "-f",
                                               help="tui (terminal UI), jsonl (one JSON object per update and event) or auto (tui on a terminal)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Append the events to this file as JSON lines."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds (default: until Ctrl-C or the end of --input)."),
    window: Optional[float] = WINDOW,
    hop: float = typer.Option(1.0, "--hop", help="Seconds between updates (windows start every hop)."),
    top: int = typer.Option(5, "--top-k", "-k", min=1, help="Labels shown per update."),
    threshold: Optional[float] = THRESHOLD,
    label_thresholds: Optional[list[str]] = LABEL_THRESHOLDS,
    thresholds: Optional[Path] = THRESHOLDS,
    offset_ratio: float = OFFSET_RATIO,
    min_duration: float = MIN_DURATION,
    smooth: int = SMOOTH,
    only: Optional[list[str]] = ONLY,
    exclude: Optional[list[str]] = EXCLUDE,
    min_level: Optional[float] = typer.Option(None, "--min-level", metavar="DBFS",
                                              help="Do not tag while the newest hop is quieter than this RMS level (e.g. -50)."),
    compute_device: str = typer.Option("auto", "--compute-device", help="Where the model runs: " + COMPUTE_DEVICE_HELP),
    precision: Precision = PRECISION,
    runtime: Runtime = RUNTIME,
    threads: Optional[int] = THREADS,
    num_heads: Optional[int] = NUM_HEADS,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the model download's progress bar on stderr."),
    verbose: bool = VERBOSE,
    rollup: bool = ROLLUP,
) -> None:
    """Tag live audio from a microphone (or --input FILE) in a terminal UI or as JSON lines."""
    parameters = dict(locals())
    if duration is not None and duration <= 0:
        raise fail("--duration must be longer than 0 s", code=2)
    if input_path is not None and device is not None:
        raise fail("--input and --device exclude each other", code=2)
    from .listen import ListenOptions, prepare, run_listen

    from .events import EventOptions

    options = options_from(ListenOptions, parameters, events=options_from(EventOptions, parameters),
                           interactive=output_format == ListenFormat.tui or (
                               output_format == ListenFormat.auto and sys.stdout.isatty()))
    try:
        backend = open_backend(model, compute_device, precision, runtime, threads, num_heads, progress, verbose)
        if rollup:
            from .ontology import RollupBackend

            backend = RollupBackend(backend)
        plan = prepare(backend, options)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    run_listen(backend, options, plan)


@app.command("devices")
def devices_command(
    output_format: TableFormat = typer.Option(TableFormat.table, "--format", "-f", help="table or json."),
) -> None:
    """List the audio input devices that `tagger listen --device` accepts."""
    import json

    from .audio import native_stderr_silenced
    from .capture import import_sounddevice, list_input_devices, write_device_table

    with native_stderr_silenced():
        devices = list_input_devices(import_sounddevice())
    if output_format == TableFormat.json:  # a list for programs, empty when there are no devices
        typer.echo(json.dumps([d.__dict__ for d in devices], ensure_ascii=False))
    elif not devices:
        raise TaggerError("no audio input devices found (is a sound server running, and PULSE_SERVER "
                          "set if it is a private one?)")
    else:
        write_device_table(devices, sys.stdout)


@app.command("bench")
def bench_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model file or name (default: the embedded model)."),
    paths: Optional[list[str]] = typer.Option(None, "--path", metavar="PATH",
                                              help="Measure only this path (repeatable): torch-fp32, torch-bf16, onnx-fp32, onnx-int8."),
    windows: int = typer.Option(5, "--windows", min=1, help="Timed windows per path (one window of the model's context per call)."),
    device: str = typer.Option("cpu", "--device", help=COMPUTE_DEVICE_HELP),
    threads: Optional[int] = THREADS,
    output_format: TableFormat = typer.Option(TableFormat.table, "--format", "-f", help="table or json."),
) -> None:
    """Measure each runtime and precision for a model on this machine: seconds per window, real-time
    factor, peak memory, difference from float32 PyTorch, and the recommended choice."""
    from .bench import PATHS, as_json, bench, recommend, write_table
    from .precision import cpu_summary
    from .embedded import EMBEDDED_MODEL

    chosen = tuple(paths or PATHS)
    unknown = [p for p in chosen if p not in PATHS]
    if unknown:
        raise fail(f"unknown --path {unknown[0]} (use {', '.join(PATHS)})", code=2)
    try:
        from .backends import parse_device

        parse_device(device)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    results = bench(model, chosen, device, threads, windows,
                    report=lambda message: stderr.print(message) if stderr.is_terminal else None)
    name = model or EMBEDDED_MODEL
    if output_format == TableFormat.json:
        typer.echo(as_json(results, name, cpu_summary()))
    else:
        write_table(results, recommend(results), name, cpu_summary(), sys.stdout)


@app.command("corpus")
def corpus_command(
    out: Path = typer.Argument(..., help="Folder to create with the clips and their manifests.", show_default=False),
    cache: Path = typer.Option(Path("corpus-cache"), "--cache", help="Downloaded .deb files, unpacked packages and rendered sources (reused by later builds)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the renders, the split and every clip."),
    train_clips: int = typer.Option(10000, "--train-clips", min=1, help="Clips in the training split."),
    heldout_clips: int = typer.Option(1500, "--heldout-clips", min=1, help="Clips in the held-out split."),
    heldout_fraction: float = typer.Option(0.25, "--heldout-fraction", min=0.0, max=0.9, help="Share of each class's source recordings held out; 0 holds none out (every source trains, no heldout.csv)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes that decode sources and write clips."),
    conditions: float = typer.Option(0.0, "--conditions", min=0.0, max=1.0, help=escape(CONDITIONS_HELP) + " Training split only."),
    pseudo_labels: Optional[Path] = typer.Option(None, "--pseudo-labels", help="Also train on the model-labelled recordings of this CSV (written by python -m tagger.corpus.pseudo select); they never enter the held-out split.", show_default=False),
) -> None:
    """Build the offline training corpus of the default model from Debian packages (needs apt-get, fluidsynth, espeak-ng)."""
    parameters = dict(locals())
    from .corpus.build import CorpusOptions, build_corpus

    opts = options_from(CorpusOptions, parameters)
    summary = build_corpus(opts, report=lambda message: stderr.print(message))
    timings = summary["timings"]
    stderr.print(f"{out}: {summary['clips']['train']} training and {summary['clips']['heldout']} held-out clips "
                 f"from {summary['sources']} sources in {timings['total_s'] / 60:.1f} min")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every file being written is finished or cleaned up."""


_terminated = []  # holds a signal number once SIGTERM arrived


def _raise_terminated(signum: int, frame: object) -> None:
    _terminated.append(signum)
    raise Terminated()


def _interrupted() -> None:
    """One line and the shell's exit status for a signal: 130 for Ctrl-C, 143 for SIGTERM."""
    error_line("terminated" if _terminated else "interrupted")
    sys.exit(128 + (signal.SIGTERM if _terminated else signal.SIGINT))


def main() -> None:
    """Console entry point: user errors are one line on stderr, never a traceback."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = app(standalone_mode=False)  # Typer turns Ctrl-C into exit code 130
    except TyperException as exc:  # usage errors (bad option or value), exit code 2
        if exc.format_message():  # (no message: `tagger` alone, which printed the help)
            error_line(f"{exc.format_message()} (see tagger --help)")
        sys.exit(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except TaggerError as exc:
        error_line(str(exc))
        sys.exit(1)
    except Exception as exc:  # last resort: keep the promise of no tracebacks
        if os.environ.get("TAGGER_DEBUG"):
            raise
        error_line(f"unexpected {type(exc).__name__}: {exc} (set TAGGER_DEBUG=1 for details)")
        sys.exit(1)
    if code == 128 + signal.SIGINT:
        _interrupted()
    sys.exit(code or 0)

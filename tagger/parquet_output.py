"""Parquet output (``tagger file -f parquet -o FOLDER``; pyarrow, the ``tagger[parquet]`` extra).

The folder holds two tables, each a set of part files that Arrow, pandas, Polars or DuckDB read as
one table (``pyarrow.parquet.read_table(FOLDER / "clips")``):

- ``windows/``: one row per window: ``path``, ``start``, ``end`` (seconds) and ``probabilities``
  (a fixed-size list of float32, one per label, in the model's label order);
- ``clips/``: one row per input file: ``path``, ``duration``, ``sample_rate``, ``channels``,
  ``format``, ``warnings``, ``probabilities`` (the clip scores; null for a file that failed),
  ``error`` (null when it was tagged) and ``events`` (JSON, when events were asked for).

Every part carries the run in its schema metadata under ``tagger`` (JSON: model, labels, sample
rate, window, hop, pooling, the model's own event thresholds, the tagger version), so events and
thresholds can be recomputed from the windows without running the model again.

Parts are written atomically every FLUSH_FILES files or FLUSH_SECONDS seconds (windows first, then
the clips part that commits them), so a killed run loses at most the files since the last part;
``--resume`` reads the committed paths back, and removes windows parts that no clips part committed.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from pathlib import Path
from typing import Any

from .errors import TaggerError
from .output import RunInfo
from .tagging import FileResult

FLUSH_FILES = 64
FLUSH_SECONDS = 30.0
METADATA_KEY = b"tagger"
TABLES = ("windows", "clips")
# The run settings that must match for --resume to add to a folder.
_SAME_RUN = ("model", "labels", "model_sample_rate", "window", "hop", "pooling")


def require_pyarrow() -> None:
    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise TaggerError("-f parquet needs pyarrow: pip install 'tagger[parquet]'") from None


def run_metadata(run: RunInfo, thresholds: dict[str, float]) -> dict[str, Any]:
    from . import __version__

    return {**run.header(), "labels": list(run.labels), "thresholds": dict(thresholds), "tagger": __version__}


def read_metadata(path: Path) -> dict[str, Any]:
    """The run a part (or the first part of a table folder) was written by."""
    import pyarrow.parquet as pq

    parts = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not parts:
        raise TaggerError(f"{path}: no Parquet parts")
    metadata = pq.read_schema(parts[0]).metadata or {}
    if METADATA_KEY not in metadata:
        raise TaggerError(f"{parts[0]}: not written by tagger (no run metadata)")
    return json.loads(metadata[METADATA_KEY])


class ParquetSink:
    """Results into ``folder`` as Parquet parts named ``<prefix>NNNNNN.parquet`` (see the module)."""

    def __init__(self, folder: Path, run: RunInfo, thresholds: dict[str, float], prefix: str = "part-") -> None:
        import pyarrow as pa

        self.folder, self.prefix = folder, prefix
        self.metadata = run_metadata(run, thresholds)
        classes = len(run.labels)
        scores = pa.list_(pa.float32(), classes)
        meta = {METADATA_KEY: json.dumps(self.metadata, ensure_ascii=False).encode()}
        self.schemas = {
            "windows": pa.schema([("path", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
                                  ("probabilities", scores)], metadata=meta),
            "clips": pa.schema([("path", pa.string()), ("duration", pa.float64()), ("sample_rate", pa.int32()),
                                ("channels", pa.int32()), ("format", pa.string()),
                                ("warnings", pa.list_(pa.string())), ("probabilities", scores),
                                ("error", pa.string()), ("events", pa.string())], metadata=meta),
        }
        for table in TABLES:
            try:
                (folder / table).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TaggerError(f"{folder / table}: cannot create the folder ({exc.strerror or exc})") from None
        self.sequence = next_sequence(folder, prefix)
        self.rows: dict[str, dict[str, list]] = {t: {n: [] for n in self.schemas[t].names} for t in TABLES}
        self.pending = 0
        self.written = 0
        self.last_flush = time.monotonic()

    def add(self, result: FileResult) -> None:
        windows = self.rows["windows"]
        for w in result.windows:
            windows["path"].append(result.path)
            windows["start"].append(w.start)
            windows["end"].append(w.end)
            windows["probabilities"].append(w.probabilities)
        info = result.info
        self._clip(path=result.path, duration=result.duration, sample_rate=info.sample_rate,
                   channels=info.channels, format=info.format, warnings=list(result.warnings),
                   probabilities=result.clip, error=None,
                   events=None if result.events is None else json.dumps(result.events, ensure_ascii=False))

    def add_error(self, path: str, message: str) -> None:
        self._clip(path=path, duration=None, sample_rate=None, channels=None, format=None, warnings=[],
                   probabilities=None, error=message, events=None)

    def _clip(self, **row: Any) -> None:
        for name, value in row.items():
            self.rows["clips"][name].append(value)
        self.pending += 1
        if self.pending >= FLUSH_FILES or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the pending rows as one part of each table (windows first; the clips part commits)."""
        import numpy as np
        import pyarrow as pa

        if not self.pending and (self.written or self.sequence):
            return  # an empty part only for a run that would otherwise leave no table at all
        name = f"{self.prefix}{self.sequence:06d}.parquet"
        for table in TABLES:
            columns = self.rows[table]
            arrays = []
            for field in self.schemas[table]:
                values = columns[field.name]
                if field.name == "probabilities":
                    arrays.append(_scores(values, field.type, np, pa))
                else:
                    arrays.append(pa.array(values, type=field.type))
            _write_part(pa.Table.from_arrays(arrays, schema=self.schemas[table]), self.folder / table / name)
        self.sequence += 1
        self.written += self.pending
        self.pending = 0
        self.rows = {t: {n: [] for n in self.schemas[t].names} for t in TABLES}
        self.last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()


def _scores(values: list, list_type, np, pa):
    """A fixed-size list column from per-row float arrays (None: a null row)."""
    size = list_type.list_size
    mask = np.array([v is None for v in values], dtype=bool)
    flat = np.zeros((len(values), size), dtype=np.float32)
    for i, v in enumerate(values):
        if v is not None:
            flat[i] = v
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), size,
                                             mask=pa.array(mask) if mask.any() else None)


def _write_part(table, target: Path) -> None:
    import pyarrow.parquet as pq

    from .atomic import atomic_write

    try:
        with atomic_write(target, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
    except OSError as exc:
        raise TaggerError(f"{target}: cannot write ({exc.strerror or exc})") from None


def next_sequence(folder: Path, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d{6})\.parquet")
    numbers = [int(m[1]) for table in TABLES for p in (folder / table).glob("*.parquet")
               if (m := pattern.fullmatch(p.name))]
    return max(numbers, default=-1) + 1


def holds_results(folder: Path) -> bool:
    return any(any((folder / table).glob("*.parquet")) for table in TABLES)


def completed_paths(folder: Path, run: RunInfo, thresholds: dict[str, float], prefix: str) -> set[str]:
    """For --resume: the inputs the folder's clips parts hold (tagged or failed), after checking
    that they come from the same model and settings; windows parts of ``prefix`` that no clips part
    committed (a kill between the two writes) are removed."""
    import pyarrow.parquet as pq

    clips = sorted((folder / "clips").glob("*.parquet"))
    committed = {p.name for p in clips}
    for orphan in (folder / "windows").glob(f"{prefix}*.parquet"):
        if orphan.name not in committed:
            orphan.unlink()
    if not clips:
        return set()
    expected = run_metadata(run, thresholds)
    found = read_metadata(folder / "clips")
    for key in _SAME_RUN:
        if found.get(key) != expected[key]:
            raise TaggerError(f"{folder} holds results of another run ({key}: {_short(found.get(key))}, this run: "
                              f"{_short(expected[key])}); use a new folder")
    done: set[str] = set()
    for part in clips:
        try:
            done.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
        except Exception as exc:  # pyarrow's errors for a damaged or foreign file
            raise TaggerError(f"{part}: cannot read ({' '.join(str(exc).split())})") from None
    return done


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."

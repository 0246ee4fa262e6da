"""Bulk runs of ``tagger file``: inputs from lists, a shard of them, resuming into the output,
decoding processes and Ray. This module turns those options into the list of targets to tag;
:mod:`tagger.files` (one machine) or :mod:`tagger.ray_tagging` (a cluster) tags them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .files import Target, probe_targets
from .inputs import in_shard, parse_shard, read_list
from .output import RunInfo

RESUMABLE_FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class BulkOptions:
    from_list: Path | None = None
    path_column: str = "path"
    delimiter: str = ","
    resume: bool = False
    shard: str | None = None  # "K/N"
    jobs: int = 0
    ray: str | None = None  # a Ray address
    ray_actors: int = 1
    output_format: str = "table"
    output: Path | None = None

    @property
    def active(self) -> bool:
        """Whether this is a bulk run: headers are read when each file's turn comes (not all up
        front), the inputs are deduplicated and progress counts files."""
        return bool(self.from_list or self.shard or self.resume or self.jobs or self.ray
                    or self.output_format == "parquet")

    def check(self) -> None:
        """ValueError for options that cannot work together (before any work)."""
        if self.shard is not None:
            parse_shard(self.shard)
        if self.jobs and self.ray:
            raise ValueError("--jobs and --ray exclude each other (on Ray, decoding runs in Ray tasks)")
        if self.output_format == "parquet":
            if self.output is None:
                raise ValueError("-f parquet writes a folder: name it with -o")
            if self.output.exists() and not self.output.is_dir():
                raise ValueError(f"{self.output}: -f parquet writes a folder, and this is a file")
        if self.resume:
            if self.output_format not in RESUMABLE_FORMATS or self.output is None:
                raise ValueError("--resume adds to an output file: use -f jsonl or -f parquet with -o")
        elif self.output_format == "parquet":
            from .parquet_output import holds_results

            if holds_results(self.output):
                raise ValueError(f"{self.output} already holds results: add --resume to continue that run, "
                                 "or choose a new folder")

    @property
    def part_prefix(self) -> str:
        """Parquet part names: shards writing into one folder never collide."""
        if self.shard is None:
            return "part-"
        k, n = parse_shard(self.shard)
        return f"part-{k}of{n}-"


def bulk_targets(paths: list[Path], options: BulkOptions) -> list[Target]:
    """The paths and the list's entries, expanded, each once, in the given order, this shard's only;
    headers are not read here."""
    if options.from_list is not None:
        paths = [*paths, *read_list(options.from_list, options.path_column, options.delimiter)]
    seen: set[str] = set()
    targets = []
    shard = parse_shard(options.shard) if options.shard is not None else None
    for target in probe_targets(paths, read_headers=False):
        if target.path in seen or (shard is not None and not in_shard(target.path, shard)):
            continue
        seen.add(target.path)
        targets.append(target)
    return targets


def finished_inputs(options: BulkOptions, run: RunInfo, thresholds: dict[str, float]) -> set[str]:
    """The inputs the output already holds (``--resume``)."""
    assert options.output is not None
    if options.output_format == "parquet":
        from .parquet_output import completed_paths

        return completed_paths(options.output, run, thresholds, options.part_prefix)
    from .resume import jsonl_completed

    return jsonl_completed(options.output, run.model)

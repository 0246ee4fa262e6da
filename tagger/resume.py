"""``tagger file --resume``: which inputs an earlier run of the same command already wrote.

JSONL: every line is one input (a result or an error), appended and flushed as each finishes, so a
killed run leaves at most a cut last line: it is removed before the run appends. Parquet: see
:func:`tagger.parquet_output.completed_paths`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import TaggerError


def jsonl_completed(path: Path, model: str) -> set[str]:
    """The paths ``path`` holds, after cutting a partial last line; TaggerError when it is not a
    tagger JSONL file or holds another model's results."""
    if not path.exists():
        return set()
    try:
        with open(path, "rb+") as handle:
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):  # the line being written when the run was killed
                handle.truncate(end)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        raise TaggerError(f"{path}: cannot resume ({exc.strerror or exc})") from None
    done: set[str] = set()
    for number, line in enumerate(data[:end].splitlines(), start=1):
        try:
            record = json.loads(line)
            done.add(record["path"])
        except (ValueError, KeyError, TypeError):
            raise TaggerError(f"{path}:{number}: not a tagger JSONL line; --resume adds only to "
                              "tagger file -f jsonl output") from None
        if record.get("model", model) != model:
            raise TaggerError(f"{path} holds results of model {record['model']!r}, this run uses {model!r}; "
                              "use a new output file")
    return done

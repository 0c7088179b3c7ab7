"""The run folder of a server: every answered request appended as one trace.

The one place that knows where served traces go, so the run-folder rules
(the manifest and the one-writer lock) plug in here.  The folder is a
``traces.jsonl`` like any ``leapt infer`` run's, so ``leapt view`` and
``leapt report`` read it; each line is written whole and fsync'ed before the
response goes out (a killed server loses no answered request, and a torn last
line is cut off when the folder is reopened).  A folder holding traces that
were not served (an ``infer`` or ``eval`` run) is refused: served requests
carry their own settings each, which would corrupt that run's metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from inference.trace import Trace, TraceFile
from leapt.config import ConfigError

#: the key every served trace's ``config`` carries (and an offline run's never does)
SERVED_KEY = "served"


def check_run_dir(output_dir: str | Path) -> None:
    """Refuse, before any model loads, a folder whose traces were not served (key 'output_dir')."""
    path = Path(output_dir) / "traces.jsonl"
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:  # read only: a refused folder stays as it was
        first = next((line for line in fh if line.strip()), None)
    try:
        config = json.loads(first)["config"] if first is not None else {SERVED_KEY: True}
    except (ValueError, KeyError, TypeError):
        config = {}
    if SERVED_KEY not in config:
        raise ConfigError(
            f"{path} holds traces that were not served (a leapt infer, eval or generate run); "
            "serve into another folder (key 'output_dir')"
        )


class ServedRun:
    """Append-only traces of one server's run folder."""

    def __init__(self, output_dir: str | Path) -> None:
        check_run_dir(output_dir)
        self.dir = Path(output_dir)
        self.traces = TraceFile(self.dir / "traces.jsonl")

    def append(self, trace: Trace) -> None:
        """Write one answered request's trace, on disk before this returns."""
        self.traces.append(trace)

"""The run folder of a server: every answered request appended as one trace.

The one place that knows where served traces go and the run-folder rules
they follow: one server per folder (``leapt.run_lock.FolderLock``, held for
the server's life) and a manifest of the model, dtype, backend, context
length and protocol every request ran with (settings vary per request and
are recorded in each trace), so a restart with another model is refused.  The folder is a
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
from typing import Any

from inference.args import LeapArguments, ModelArguments
from inference.trace import Trace, TraceFile
from leapt.config import ConfigError
from leapt.run_lock import FolderLock
from leapt.run_manifest import check_manifest, read_manifest, write_manifest

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


def served_manifest(model_args: ModelArguments, leap_args: LeapArguments) -> dict[str, Any]:
    """What every request served into one folder shares (the rest is per request)."""
    from inference.run_folder import engine_identity

    return {**engine_identity(model_args, leap_args), SERVED_KEY: True}


class ServedRun:
    """Append-only traces of one server's run folder, locked while the server runs.

    Build it before the model loads (a refusal changes nothing), call
    :meth:`record` once it has loaded, :meth:`close` when the server stops.
    """

    def __init__(self, output_dir: str | Path, manifest: dict[str, Any]) -> None:
        check_run_dir(output_dir)
        self.dir = Path(output_dir)
        self.manifest = manifest
        self.lock = FolderLock(self.dir).acquire()
        try:
            check_manifest(self.dir, read_manifest(self.dir), manifest)
        except BaseException:
            self.lock.release()
            raise
        self.traces = TraceFile(self.dir / "traces.jsonl")

    def record(self) -> None:
        """Write the folder's manifest (after the model loaded: a failed load writes nothing)."""
        write_manifest(self.dir, self.manifest)

    def close(self) -> None:
        self.lock.release()

    def append(self, trace: Trace) -> None:
        """Write one answered request's trace, on disk before this returns."""
        self.traces.append(trace)

"""Wall time a stage spent on its output folder, kept beside its results.

``leapt generate``, ``leapt train`` and ``leapt eval`` each add one entry to
``<output_dir>/wall_time.json`` when an invocation finishes work there, so the
before/after report (``eval.compare``) can show what every stage cost.  A
rerun that finds its work done (resume) adds nothing, a resumed run adds its
own time, and the total is the sum: the time an interrupted invocation had
spent before it died is not counted (it left no record), which the total
therefore understates rather than inventing.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from leapt.files import atomic_write_text

WALL_TIME_JSON = "wall_time.json"


class StageClock:
    """Started when a stage starts; :meth:`record` adds the elapsed time to the folder's file."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.started = time.monotonic()

    def record(self, folder: str | Path) -> dict:
        """Append this invocation to ``folder/wall_time.json`` (atomically) and return the file."""
        path = Path(folder) / WALL_TIME_JSON
        doc = read_wall_time(folder) or {"stage": self.stage, "seconds": 0.0, "runs": []}
        seconds = round(time.monotonic() - self.started, 1)
        finished = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc["runs"].append({"finished": finished, "seconds": seconds})
        doc["seconds"] = round(sum(run["seconds"] for run in doc["runs"]), 1)
        atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        return doc


def read_wall_time(folder: str | Path) -> dict | None:
    """``folder``'s ``wall_time.json``, or None when no invocation recorded one."""
    path = Path(folder) / WALL_TIME_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

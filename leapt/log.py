"""Status and diagnostics through :mod:`logging`, set up once by the ``leapt`` entry point.

Modules log with ``logger = logging.getLogger(__name__)`` as transformers and
TRL do; :func:`setup` gives the project's packages one stderr handler whose
lines read ``[leapt <stage>] message`` (``[leapt <stage>] warning: message``
from warnings up; the prefix Slurm logs are searched by).  The verbosity comes
from ``LEAPT_VERBOSITY`` (``debug``, ``info``, ``warning``, ``error``,
``critical``; default ``info``), like ``TRANSFORMERS_VERBOSITY``.  Progress
bars (tqdm) and a command's product (a results table, a dry run's listing)
are not logging: they stay on their streams.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator

from leapt.config import ConfigError
from leapt.redact import redact_urls

VERBOSITY_ENV = "LEAPT_VERBOSITY"
LEVELS = {
    name: getattr(logging, name.upper())
    for name in ("debug", "info", "warning", "error", "critical")
}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the call (pytest's capture swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


class _Formatter(logging.Formatter):
    """``[leapt <stage>] message``, with the level named from warnings up and URLs redacted."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.prefix = f"[leapt {stage}] "

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return self.prefix + level + redact_urls(super().format(record))


def main_process_only(record: logging.LogRecord) -> bool:
    """A logging filter for messages every rank of a launched run would repeat: rank 0 says them."""
    return int(os.environ.get("RANK", "0") or 0) == 0


_handler: _StderrHandler | None = None


def verbosity() -> int:
    """The level named by ``LEAPT_VERBOSITY`` (INFO when unset)."""
    name = os.environ.get(VERBOSITY_ENV, "").strip().lower() or "info"
    if name not in LEVELS:
        raise ConfigError(f"{VERBOSITY_ENV}={name!r}: choose from {', '.join(LEVELS)}")
    return LEVELS[name]


def setup(stage: str, packages: Iterable[str]) -> None:
    """Route the log records of ``packages`` (the project's) to stderr as ``[leapt <stage>] ...``.

    Safe to call again (one process may run several stages, as tests do): the
    previous handler is replaced, never doubled.  Records still propagate to
    the root logger, so other handlers (pytest's ``caplog``) see them too;
    other libraries' loggers are left as they are.
    """
    global _handler
    level = verbosity()
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(stage))
    for name in packages:
        package = logging.getLogger(name)
        if _handler is not None:
            package.removeHandler(_handler)
        package.addHandler(handler)
        package.setLevel(level)
    _handler = handler


@contextlib.contextmanager
def quiet_datasets_progress() -> Iterator[None]:
    """``datasets``' progress bars off for the block, as they were after it: a bar per local
    file would otherwise precede, and break up, a one-line error about that file."""
    from datasets.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_off = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            enable_progress_bars()

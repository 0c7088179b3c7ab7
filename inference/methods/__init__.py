"""The inference methods, one module each, and the one registry that names them.

A method is a module with ``run(ctx, problem) -> ProblemRun``: a per-problem
coroutine driven by :func:`inference.engine.run_problems`, built from the
steps :class:`inference.engine.EngineContext` shares (force answers, one
LeaP block, close a summary).  Adding a method means writing its module and
adding one line here.  Modules are imported only when a run asks for them,
so this registry imports nothing back and ``inference.args`` can read its
names without importing the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference.engine import MethodRunner

#: method name -> module holding its ``run``, in the order reports show them (baseline first)
METHOD_MODULES: dict[str, str] = {
    "independent": "inference.methods.independent",
    "leap": "inference.methods.leap",
    "leap_t": "inference.methods.leap_t",
    "leap_s": "inference.methods.leap_s",
    "moa": "inference.methods.moa",
}


def method_runner(name: str) -> MethodRunner:
    """The ``run`` of method ``name``, wrapped so a round without progress raises."""
    from inference.engine import guard_progress

    run = importlib.import_module(METHOD_MODULES[name]).run

    def guarded(ctx, problem):
        return guard_progress(problem, run(ctx, problem))

    return guarded

"""The inference methods, one module each, and the one registry that names them.

A method is a module with ``run(ctx, problem) -> ProblemRun``: a per-problem
coroutine driven by :func:`inference.engine.run_problems`, built from the
steps :class:`inference.engine.EngineContext` shares (force answers, one
LeaP block, close a summary).  Adding a method means writing its module and
adding one line here.  This registry imports nothing: the engine imports a
method's module only when a run asks for it (:func:`inference.engine.method_runner`),
so ``inference.args`` can read the names without importing the engine.
"""

from __future__ import annotations

#: method name -> module holding its ``run``, in the order reports show them (baseline first)
METHOD_MODULES: dict[str, str] = {
    "independent": "inference.methods.independent",
    "leap": "inference.methods.leap",
    "leap_t": "inference.methods.leap_t",
    "leap_s": "inference.methods.leap_s",
    "moa": "inference.methods.moa",
}

"""The run sequence every generating command shares, with the folder's lock and identity inside.

``leapt infer``, ``leapt eval`` and ``leapt generate`` (and anything else that
writes traces into folders, e.g. a server) do the same steps, in this order::

    with open_runs(model_args, [RunSpec(...), ...], lock_dir=OUT) as session:
        for spec in session.specs:
            session.run(spec, grade=...)     # appends to spec.folder/traces.jsonl
        ...                                  # reports, datasets: still under the lock

1. lock ``lock_dir`` (one writer; a second process refuses naming the holder);
2. for every run folder: load the protocol, build the run's manifest (what made
   it: :func:`run_manifest`), compare it with the recorded one (or, for a
   folder of an older version, with what its traces record), stream the
   traces once for the finished ids, each checked against the problem text
   it was run on; a corrupt line in the middle stops here, naming it;
3. check that paths fit the context (a warning, or an error with ``strict``);
4. if any problem is pending: load the backend (unless one was given), then
   write the manifests; else load nothing and write nothing;
5. run; 6. close the backend and release the lock.

Every refusal (steps 1-3) comes before a model loads and leaves the folders as
they were: the lock file is removed again, and a folder this call created for
it too.  Manifests are written only once the backend has loaded (a model or
server that fails to load changes nothing), with the model's identity as
known then, so the revision a first download resolved is recorded.

Folders made before manifests existed (``traces.jsonl`` only): what their
traces record (model name, backend, method settings, problem texts) is
compared; dtype, ``max_model_len`` and the protocol's content are not recorded
there, so they cannot be checked -- the run continues with a warning naming
them and records the current values from then on (refusing would strand every
older folder, and its traces still prove model, settings and problems).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.args import EMBEDDED_MODEL, LeapArguments, ModelArguments
from inference.backends.base import Backend
from inference.problems import Problem
from inference.run import Grader, run_inference
from inference.trace import Trace, scan_traces
from leapt.config import ConfigError, to_dict
from leapt.run_lock import FolderLock
from leapt.run_manifest import (
    MANIFEST_NAME,
    check_manifest,
    json_digest,
    model_identity,
    read_manifest,
    write_manifest,
)

logger = logging.getLogger(__name__)

TRACES_NAME = "traces.jsonl"
#: manifest keys an older folder (traces only, no manifest) cannot tell
UNRECORDED_BEFORE_MANIFESTS = ("dtype", "max_model_len", "protocol")


@dataclass
class RunSpec:
    """One run folder: the method settings and problems that go into it.

    ``source`` names where the problems come from (a local file is recorded
    by its resolved path); ``extra`` holds any further setting that shapes
    what the folder's results mean (``leapt generate``: its filters and shard).
    """

    folder: Path
    leap_args: LeapArguments
    problems: list[Problem]
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)

    @property
    def traces_path(self) -> Path:
        return self.folder / TRACES_NAME


def problem_digest(problem: str, options: Sequence[str] | None) -> str:
    """Hash of what a path was asked: the problem text and its options."""
    return json_digest([problem, None if options is None else list(options)])


def source_identity(source: str) -> str:
    """A problem source as recorded: a local file by its resolved path, anything else as given."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.is_file() else source


def model_ref(model_args: ModelArguments) -> dict[str, Any]:
    """The model's identity (see :func:`leapt.run_manifest.model_identity`).

    The embedded default is named by its id and the shipped GGUF file's name
    and size, known without converting it.
    """
    if model_args.model == EMBEDDED_MODEL:
        from inference.models import embedded_gguf

        try:
            gguf = embedded_gguf()
        except ConfigError:
            return {"id": EMBEDDED_MODEL}
        return {"id": EMBEDDED_MODEL, "file": gguf.name, "size": gguf.stat().st_size}
    return model_identity(model_args.model)


def protocol_digest(leap_args: LeapArguments) -> str:
    """Hash of the protocol's content (the packaged file merged with ``protocol``), not its path."""
    from inference.protocol import load_protocol

    return json_digest(dataclasses.asdict(load_protocol(leap_args.protocol)))


def engine_identity(model_args: ModelArguments, leap_args: LeapArguments) -> dict[str, Any]:
    """What every trace of a folder shares, however it was asked for: the model as loaded and
    the protocol (a run over a problem set and a server's folder both record it first)."""
    return {
        "model": model_ref(model_args),
        "dtype": model_args.dtype,
        "backend": model_args.backend,
        "max_model_len": model_args.max_model_len,
        "protocol": protocol_digest(leap_args),
    }


def run_manifest(model_args: ModelArguments, spec: RunSpec) -> dict[str, Any]:
    """Everything that made ``spec.folder``'s results, in the order a difference is reported."""
    return {
        **engine_identity(model_args, spec.leap_args),
        "source": source_identity(spec.source),
        "settings": to_dict(spec.leap_args),
        "extra": spec.extra,
        "problems": {p.id: problem_digest(p.problem, p.options) for p in spec.problems},
        # a served folder (``leapt serve``) records True: its traces are requests, each with
        # its own settings, and must not mix with a run over a problem set
        "served": False,
    }


def _legacy_manifest(trace: Trace) -> dict[str, Any]:
    """What a trace of an older version records of the run's identity."""
    config = dict(trace.config)
    derived: dict[str, Any] = {"settings": config}
    if "backend" in config:
        derived["backend"] = config.pop("backend")
    if trace.model:
        path = Path(trace.model).expanduser()
        derived["model"] = {"path": str(path.resolve())} if path.is_dir() else {"id": trace.model}
    return derived


@dataclass
class FolderState:
    """What a run folder holds, as found by :func:`check_folder`."""

    recorded: dict[str, Any] | None  # the manifest, or None
    done: set[str]  # ids of finished problems
    legacy: bool  # traces without a manifest (an older version's folder)


def check_folder(spec: RunSpec, manifest: dict[str, Any]) -> FolderState:
    """Refuse (ConfigError) to continue ``spec.folder`` with ``manifest``; else what is done.

    Streams ``traces.jsonl`` once: finished ids, each finished problem's text
    against this run's, and (for a folder without a manifest) the first
    line's recorded settings against this run's.
    """
    recorded = read_manifest(spec.folder)
    check_manifest(
        spec.folder,
        {k: v for k, v in (recorded or {}).items() if k != "problems"},
        {k: v for k, v in manifest.items() if k != "problems"},
    )
    current = manifest["problems"]
    for pid, old in (recorded or {}).get("problems", {}).items():
        if pid in current and current[pid] != old:
            raise _changed_problem(spec, pid)
    done: set[str] = set()
    legacy = False
    for _, trace in scan_traces(spec.traces_path):
        if not done and recorded is None:
            legacy = True
            check_manifest(spec.folder, _legacy_manifest(trace), manifest)
        done.add(trace.id)
        if (
            trace.id in current
            and problem_digest(trace.problem, trace.options) != current[trace.id]
        ):
            raise _changed_problem(spec, trace.id)
    return FolderState(recorded, done, legacy)


def _changed_problem(spec: RunSpec, pid: str) -> ConfigError:
    return ConfigError(
        f"{spec.folder} holds problem '{pid}' with another text or options than "
        f"{spec.source} gives now (problem id '{pid}'); use another output folder, or the "
        "old problems to continue it"
    )


class RunSession:
    """The open runs of one :func:`open_runs` block: their backend and what is pending."""

    def __init__(self, model_args: ModelArguments, specs: list[RunSpec], backend: Backend | None):
        self.model_args = model_args
        self.specs = specs
        self.backend = backend
        self.pending: dict[Path, list[Problem]] = {}

    @property
    def any_pending(self) -> bool:
        """Whether any folder has a problem left to run (else no backend was loaded)."""
        return any(self.pending.values())

    def run(
        self,
        spec: RunSpec,
        *,
        grade: Grader | None = None,
        progress: bool = True,
        concurrent_problems: int | None = None,
        on_trace: Callable[[Trace], None] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run ``spec``'s pending problems into its folder; return (and write) its summary.

        ``settings`` are recorded in every new trace's config (see :func:`run_inference`)."""
        return run_inference(
            self.model_args,
            spec.leap_args,
            spec.problems,
            spec.folder,
            backend=self.backend,
            grade=grade,
            progress=progress,
            concurrent_problems=concurrent_problems,
            on_trace=on_trace,
            settings=settings,
        )


@contextmanager
def open_runs(
    model_args: ModelArguments,
    specs: Sequence[RunSpec],
    *,
    lock_dir: str | Path,
    backend: Backend | None = None,
) -> Iterator[RunSession]:
    """Check, lock and prepare ``specs`` for running; see the module doc for the sequence.

    ``lock_dir`` is the folder one writer owns (``leapt eval``: its whole
    output root; ``leapt generate``: the shard's raw folder).  A ``backend``
    passed in is used and not closed; otherwise one is loaded only when some
    problem is pending, and closed at the end.  Raises :class:`ConfigError`
    (nothing changed on disk) when a folder is locked, made by other inputs,
    or has a corrupt line.
    """
    from inference.context import check_context_fits
    from inference.methods import REGISTRY

    specs = list(specs)
    locks: list[FolderLock] = []
    owned = False
    session = RunSession(model_args, specs, backend)
    try:
        # the owned folder, then every run folder in it: another process writing into one of
        # them directly (``leapt infer --output_dir ROOT/aime24/leap``) is refused either way
        for folder in dict.fromkeys(
            Path(f).resolve() for f in [lock_dir, *(s.folder for s in specs)]
        ):
            locks.append(FolderLock(folder).acquire())
        manifests, states = [], []
        for spec in specs:
            if spec.leap_args.method not in REGISTRY:
                raise ConfigError(f"unknown method '{spec.leap_args.method}' (key 'method')")
            manifest = run_manifest(model_args, spec)
            manifests.append(manifest)
            states.append(check_folder(spec, manifest))
        for spec in specs:
            check_context_fits(model_args, spec.leap_args, spec.problems)
        for spec, state in zip(specs, states, strict=True):
            session.pending[spec.folder] = [p for p in spec.problems if p.id not in state.done]
        if session.any_pending:
            if backend is None:  # a model or server that fails to load leaves no manifest
                from inference.backends import load_backend

                session.backend = load_backend(model_args)
                owned = True
                model = model_ref(model_args)  # as known after loading: a download's revision
                manifests = [{**m, "model": model} for m in manifests]
            for spec, manifest, state in zip(specs, manifests, states, strict=True):
                _record(spec, manifest, state)
        yield session
    finally:
        if owned and session.backend is not None:
            session.backend.close()
        for lock in reversed(locks):  # inner folders first: empty ones made for a lock go
            lock.release()


def _record(spec: RunSpec, manifest: dict[str, Any], state: FolderState) -> None:
    """Write ``manifest`` into ``spec.folder``, keeping the problems recorded before."""
    if state.legacy:
        logger.warning(
            "%s has no %s (made by an older leapt): its traces match this run's model, settings "
            "and problems; %s are not recorded there and cannot be checked, recording this "
            "run's from now on",
            spec.folder,
            MANIFEST_NAME,
            ", ".join(UNRECORDED_BEFORE_MANIFESTS),
        )
    if state.recorded is not None:  # the model as known after loading may say more
        check_manifest(spec.folder, {**state.recorded, "problems": {}}, manifest)
    merged = {
        **manifest,
        "problems": {**(state.recorded or {}).get("problems", {}), **manifest["problems"]},
    }
    if merged != state.recorded:
        spec.folder.mkdir(parents=True, exist_ok=True)
        write_manifest(spec.folder, merged)

"""What does LeaP's peer loop cost compared with what it computes and what the backend can do?

One process, one fixed seed, one backend (``--backend hf|vllm``), one model
(the embedded SmolLM2-135M by default, ``--model tiny`` for a tiny Qwen2 built
on the spot, or ``--model DIR``), P problems x N paths, workloads side by side.
All start every path from the same prompt ids ((a)'s: announced or not as
``leapt infer`` decides) with the same per-turn seeds:

(a) ``leap``: ``leapt infer``'s own path (``run_inference``, traces streamed to disk);
(b) independent sampling made to generate exactly as many tokens per path as
    (a), in the same chunks of T: what LeaP would cost if its exchange were free;
(c) the published implementation's pattern around the same method (same
    triggers, openings, router, budgets and forced answers): each request's
    whole text re-sent and re-tokenized, a global barrier per round across all
    problems, the engine fed micro-batches of 16;
(d) the limit: one plain batched call over (a)'s prompts, computing as many
    decoded + prefilled tokens as (a);
(e) a prefill run (other, uncached prompts, one token each) that with (d)
    gives the engine's seconds per prefilled and per decoded token.

Each row reports the tokens the backend decoded and prefilled (cache hits
excluded, the backend's own counts) beside seconds and peak RSS.  The ratios:
seconds per generated token of (a) against (b) and (c); (a)'s seconds against
its own decoded + prefilled tokens priced at (e)/(d)'s rates (what is left is
the scheduler's cost); (a)'s decoded + prefilled tokens per second as a share
of (d)'s.  ``--json`` ends the output with one JSON line.  ``--serial`` adds
(a) with one problem in flight at a time.  Outputs go to a temporary folder
and are thrown away.

    python benchmarks/peer_loop.py --backend hf --num_problems 8 --n 4 --json
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.args import LeapArguments, ModelArguments  # noqa: E402
from inference.backends.base import GenerationRequest  # noqa: E402
from leapt.config import parse_config  # noqa: E402

#: micro-batch the reference implementation feeds its engine
NAIVE_MICRO_BATCH = 16


class PeakRSS:
    """Peak resident memory of this process and its children (vLLM's engine core), sampled."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _rss(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(Exception):  # a child that just exited
                total += proc.memory_info().rss
        return total

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def measure(label: str, backend, work: Callable[[], int]) -> dict[str, Any]:
    """Run ``work`` (returns generated tokens): time, peak RSS and what the backend computed.

    ``decoded``/``prefilled``/``cached`` are the backend's own counts over the run
    (:class:`~inference.backends.base.TokenCounts`): prompt tokens served from a
    cache are not prefilled, so they price nothing.
    """
    before = dataclasses.replace(backend.counts)
    with PeakRSS() as rss:
        start = time.perf_counter()
        tokens = work()
        seconds = time.perf_counter() - start
    after = backend.counts
    row = {
        "label": label,
        "tokens": tokens,
        "decoded": after.decoded - before.decoded,
        "prefilled": after.prefilled - before.prefilled,
        "cached": after.cached - before.cached,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_rss_mb": round(rss.peak / 2**20),
    }
    print(
        f"  {label:<30} {tokens:6d} tok {seconds:8.1f} s {row['tokens_per_s']:7.1f} tok/s "
        f"decoded {row['decoded']:6d} prefilled {row['prefilled']:6d} cached {row['cached']:6d} "
        f"peak RSS {row['peak_rss_mb']:6d} MB",
        flush=True,
    )
    return row


def engine_context(backend, leap_args: LeapArguments):
    """The context every workload takes its prompts, seeds and wording from (as ``leapt infer``)."""
    from inference.engine import EngineContext
    from inference.protocol import load_protocol

    return EngineContext(backend, load_protocol(leap_args.protocol), leap_args)


def run_leap(backend, leap_args: LeapArguments, problems, out: Path, concurrent: int | None):
    """(a): the real ``run_inference``; returns its traces for (b)'s per-path budgets."""
    from inference.run import run_inference
    from inference.trace import read_traces

    run_inference(
        ModelArguments(),
        leap_args,
        problems,
        out,
        backend=backend,
        progress=False,
        concurrent_problems=concurrent,
    )
    return read_traces(out / "traces.jsonl")


def run_matched_independent(backend, leap_args: LeapArguments, problems, budgets) -> int:
    """(b): each path generates exactly its (a) token count in chunks of T, no exchange.

    Same prompt ids and per-turn seeds as (a).  An EOS before the budget is kept
    in the context and sampling goes on, so the token count matches (a)
    whatever the model does.
    """
    from inference.engine import run_problems

    ctx = engine_context(backend, leap_args)
    eos = backend.tokenizer.eos_token_id
    total = 0

    def runner(_ctx, problem):
        paths = ctx.new_paths(problem)
        left = list(budgets[problem.id])
        turn = 0
        while any(left):
            turn += 1
            live = [p for p in paths if left[p.index] > 0]
            requests = [
                GenerationRequest(
                    list(p.token_ids),
                    min(leap_args.T, left[p.index]),
                    [],
                    ctx.seed(problem, p.index, turn, "reason"),
                )
                for p in live
            ]
            results = yield requests
            for p, r in zip(live, results, strict=True):
                ids = r.token_ids + ([eos] if r.stop_reason == "eos" else [])
                p.token_ids.extend(ids)
                left[p.index] = max(0, left[p.index] - len(ids))
        return ctx.new_trace(problem, paths)

    def on_done(trace) -> None:
        nonlocal total
        total += sum(budgets[trace.id])

    run_problems(problems, runner, ctx, on_done, max_concurrent=len(problems))
    return total


def run_naive(backend, leap_args: LeapArguments, problems) -> int:
    """(c): the published pattern around the same LeaP method.

    The method's own coroutine (same prompts, seeds, triggers, openings, router,
    budgets and forced answers as (a)), driven the way the reference code drives
    its engine: each request's whole text re-sent and re-tokenized, one global
    barrier per round across all problems, the engine fed micro-batches of 16.
    """
    from inference.engine import method_runner

    ctx = engine_context(backend, leap_args)
    tok = backend.tokenizer
    runner = method_runner("leap")
    pending: dict[str, tuple[Any, list[GenerationRequest]]] = {}
    for problem in problems:
        run = runner(ctx, problem)
        pending[problem.id] = (run, next(run))
    total = 0
    while pending:
        flat = [r for _, requests in pending.values() for r in requests]
        resent = [  # the text, re-tokenized: what a text-prompt engine is given
            GenerationRequest(
                tok.encode(tok.decode(r.token_ids), add_special_tokens=False),
                r.max_tokens,
                r.stop,
                r.seed,
            )
            for r in flat
        ]
        results = []
        for start in range(0, len(resent), NAIVE_MICRO_BATCH):
            results += backend.generate(resent[start : start + NAIVE_MICRO_BATCH], ctx.sampling)
        offset = 0
        for pid, (run, requests) in list(pending.items()):
            chunk, offset = results[offset : offset + len(requests)], offset + len(requests)
            try:
                pending[pid] = (run, run.send(chunk))
            except StopIteration as stop:
                del pending[pid]
                total += sum(p.generated_tokens for p in stop.value.paths)
    return total


def first_prompts(ctx, problems) -> list[tuple[list[int], int]]:
    """Every path's prompt ids and first-turn seed, as (a) starts them."""
    return [
        (list(path.token_ids), ctx.seed(problem, path.index, 1, "reason"))
        for problem in problems
        for path in ctx.new_paths(problem)
    ]


def run_limit(backend, leap_args: LeapArguments, problems, tokens: int) -> int:
    """(d): one plain batched call over (a)'s P x N prompts, ``tokens`` decoded + prefilled."""
    ctx = engine_context(backend, leap_args)
    prompts = first_prompts(ctx, problems)
    prompt_tokens = sum(len(ids) for ids, _ in prompts)
    cap = max(1, round((tokens - prompt_tokens) / len(prompts)))
    requests = [GenerationRequest(ids, cap, [], seed) for ids, seed in prompts]
    return sum(len(r.token_ids) for r in backend.generate(requests, ctx.sampling))


def run_prefill(backend, leap_args: LeapArguments, problems) -> int:
    """(e): prefill rate: one batched call over uncached prompts, one token each."""
    ctx = engine_context(backend, leap_args)
    requests = [GenerationRequest(ids, 1, [], seed) for ids, seed in first_prompts(ctx, problems)]
    return sum(len(r.token_ids) for r in backend.generate(requests, ctx.sampling))


def token_rates(prefill: dict[str, Any], limit: dict[str, Any]) -> tuple[float, float]:
    """Seconds per prefilled and per decoded token, solved from runs (e) and (d) together.

    Both runs prefill and decode, in different proportions:
    ``seconds = prefilled * s_prefill + decoded * s_decode`` for each.
    """
    (a, b, e), (c, d, f) = (
        (prefill["prefilled"], prefill["decoded"], prefill["seconds"]),
        (limit["prefilled"], limit["decoded"], limit["seconds"]),
    )
    det = a * d - b * c
    if det <= 0:
        raise RuntimeError(f"cannot separate prefill from decode rates ({prefill}, {limit})")
    return (e * d - b * f) / det, (a * f - e * c) / det


def priced(row: dict[str, Any], rates: tuple[float, float]) -> float:
    """What ``row``'s own work costs at the measured rates (seconds)."""
    return row["prefilled"] * rates[0] + row["decoded"] * rates[1]


def run_all(
    backend,
    leap_args: LeapArguments,
    problems,
    calibration,
    tmp: Path,
    serial: bool = False,
    on_run: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """The workloads side by side on one backend; ``on_run(key)`` is called before each."""
    traces: list = []

    def run(key: str, label: str, work: Callable[[], int]) -> None:
        if on_run is not None:
            on_run(key)
        rows[key] = measure(label, backend, work)

    def leap(concurrent: int | None = None) -> int:
        traces[:] = run_leap(backend, leap_args, problems, tmp / f"a{concurrent}", concurrent)
        return sum(p.generated_tokens for t in traces for p in t.paths)

    rows: dict[str, dict[str, Any]] = {}
    run("leap", "(a) leap", leap)
    budgets = {t.id: [p.generated_tokens for p in t.paths] for t in traces}
    rows["leap"]["summary_tokens"] = sum(p.summary_tokens for t in traces for p in t.paths)
    run(
        "independent",
        "(b) independent, same tokens",
        lambda: run_matched_independent(backend, leap_args, problems, budgets),
    )
    run("naive", "(c) reference pattern", lambda: run_naive(backend, leap_args, problems))
    work = rows["leap"]["decoded"] + rows["leap"]["prefilled"]
    run(
        "limit",
        "(d) limit: one batched call",
        lambda: run_limit(backend, leap_args, problems, work),
    )
    run(
        "prefill",
        "(e) prefill, other prompts",
        lambda: run_prefill(backend, leap_args, calibration),
    )
    if serial:
        run("serial", "(a) one problem at a time", lambda: leap(1))
    return rows


@dataclass
class PeerLoopArguments:
    """The workload measured: backend, model, problems x paths and the LeaP budget."""

    backend: str = field(default="hf", metadata={"choices": ("hf", "vllm")})
    model: str | None = field(
        default=None, metadata={"help": "model folder, 'tiny', or the embedded default"}
    )
    num_problems: int = field(default=8, metadata={"help": "synthetic problems to run"})
    n: int = 4
    T: int = 64
    max_tokens: int = 256
    summary_max_tokens: int = 48
    hf_batch_size: int = 32
    max_model_len: int = 2048
    seed: int = 0
    serial: bool = field(default=False, metadata={"help": "also (a) one problem at a time"})
    json: bool = field(default=False, metadata={"help": "end with one JSON line"})


def load(args: PeerLoopArguments, model_dir: str):
    from inference.backends import load_backend

    model_args = ModelArguments(
        model=model_dir,
        backend=args.backend,
        hf_batch_size=args.hf_batch_size,
        max_model_len=args.max_model_len,
    )
    return load_backend(model_args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    (args,) = parse_config(
        (PeerLoopArguments,), argv, "benchmarks/peer_loop.py", __doc__.split("\n\n")[0]
    )

    from inference.args import EMBEDDED_MODEL
    from inference.problems import synthetic_problems

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or EMBEDDED_MODEL
        if model_dir == "tiny":
            from tests.tiny_model import build_tiny_model

            model_dir = str(build_tiny_model(Path(tmp) / "tiny"))
        leap_args = LeapArguments(
            n=args.n,
            T=args.T,
            top_k=2,
            max_tokens=args.max_tokens,
            summary_max_tokens=args.summary_max_tokens,
            forced_answer_tokens=16,
            seed=args.seed,
        )
        problems = synthetic_problems(args.num_problems, seed=args.seed)
        calibration = synthetic_problems(args.num_problems, seed=args.seed + 1)
        print(
            f"{args.backend} backend, {model_dir}, {args.num_problems} problems x {args.n} paths, "
            f"T={args.T}, max_tokens={args.max_tokens}, summary_max_tokens={args.summary_max_tokens}",
            flush=True,
        )
        start = time.perf_counter()
        backend = load(args, model_dir)
        load_seconds = round(time.perf_counter() - start, 1)
        print(f"  backend loaded in {load_seconds} s", flush=True)
        try:
            # warm-up: imports, answer extraction, first-call setup of the backend
            run_leap(backend, leap_args, problems[:1], Path(tmp) / "warm-up", None)
            rows = run_all(backend, leap_args, problems, calibration, Path(tmp), args.serial)
        finally:
            backend.close()
    result = summarize(args, rows, load_seconds)
    if args.json:
        print(json.dumps(result))
    return result


def summarize(args: PeerLoopArguments, rows: dict[str, dict[str, Any]], load_seconds: float):
    """The ratios, printed, and everything as one dict (the JSON line)."""
    from inference.args import EMBEDDED_MODEL

    def per_token(key: str) -> float:
        return rows[key]["seconds"] / max(1, rows[key]["tokens"])

    def work_rate(key: str) -> float:  # decoded + prefilled tokens per second
        return (rows[key]["decoded"] + rows[key]["prefilled"]) / max(1e-9, rows[key]["seconds"])

    rates = token_rates(rows["prefill"], rows["limit"])
    for row in rows.values():
        row["priced_seconds"] = round(priced(row, rates), 2)
    leap = rows["leap"]
    result = {
        "backend": args.backend,
        "model": args.model or EMBEDDED_MODEL,
        "num_problems": args.num_problems,
        "n": args.n,
        "T": args.T,
        "max_tokens": args.max_tokens,
        "summary_max_tokens": args.summary_max_tokens,
        "load_seconds": load_seconds,
        "leap_summary_tokens": leap["summary_tokens"],
        "prefill_tokens_per_s": round(1 / rates[0], 1),
        "decode_tokens_per_s": round(1 / rates[1], 1),
        # LeaP's seconds over its own decoded + prefilled tokens priced at those rates
        "leap_over_its_work": round(leap["seconds"] / max(1e-9, leap["priced_seconds"]), 2),
        "leap_over_independent": round(per_token("leap") / per_token("independent"), 2),
        "naive_over_leap": round(per_token("naive") / per_token("leap"), 2),
        # LeaP's decoded + prefilled tokens per second against the one batched call's
        "leap_of_limit": round(work_rate("leap") / work_rate("limit"), 2),
        **(
            {"serial_over_leap": round(per_token("serial") / per_token("leap"), 2)}
            if args.serial
            else {}
        ),
        "runs": list(rows.values()),
    }
    print(
        f"rates: prefill {result['prefill_tokens_per_s']} tok/s, decode "
        f"{result['decode_tokens_per_s']} tok/s; leap over its work priced at them "
        f"{result['leap_over_its_work']}x; leap/independent {result['leap_over_independent']}x, "
        f"naive/leap {result['naive_over_leap']}x (seconds per generated token); leap at "
        f"{round(100 * result['leap_of_limit'])}% of the limit's decoded+prefilled tokens/s "
        f"(leap spent {leap['summary_tokens']} of its {leap['tokens']} tokens on summaries)"
    )
    return result


if __name__ == "__main__":
    main()

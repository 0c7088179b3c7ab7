"""Does serving cost throughput?  The same problems through ``leapt infer`` and ``leapt serve``.

(a) ``leapt infer``'s own path (``run_inference`` on a loaded backend, traces
    streamed to disk), P problems x N paths;
(b) the same P problems sent to a ``leapt serve`` process on 127.0.0.1 as P
    concurrent chat requests (the ``openai``-style body, ``n`` = N), each with the
    problem's id and the run seed, so the server generates exactly the paths of (a).

Both use the same backend, model, settings and problems-in-flight bound; the
model load is not timed in either (the server is timed from the first request
sent to the last answer received).  Printed: generated tokens, seconds,
tokens/s of each, their ratio, and the p50/p95 latency of the served requests.
``--json`` ends the output with one JSON line.

    python benchmarks/serve.py --model tiny --num_problems 32 --n 4
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leapt.config import parse_config  # noqa: E402


@dataclass
class ServeBenchArguments:
    model: str | None = field(
        default=None,
        metadata={"help": "model folder, 'tiny' (a tiny Qwen2 built on the spot) or the embedded"},
    )
    backend: str = field(default="hf", metadata={"help": "hf or vllm"})
    num_problems: int = field(default=32, metadata={"help": "problems (= concurrent requests)"})
    n: int = field(default=4, metadata={"help": "paths per problem"})
    T: int = field(default=16, metadata={"help": "tokens between LeaP blocks"})
    max_tokens: int = field(default=64, metadata={"help": "budget per path"})
    summary_max_tokens: int = field(default=16, metadata={"help": "cap per summary"})
    seed: int = field(default=0, metadata={"help": "run seed"})
    repeats: int = field(
        default=1,
        metadata={
            "help": "rounds of both runs, alternating which goes first (infer-serve, "
            "serve-infer, ...) so a drift in the machine's load favours neither; totals are summed"
        },
    )
    json: bool = field(default=False, metadata={"help": "end with one JSON line"})


def settings(args: ServeBenchArguments) -> list[str]:
    """The LeaP settings both runs get, as ``--key value`` flags."""
    return [
        "--backend", args.backend, "--n", str(args.n), "--top_k", "2", "--T", str(args.T),
        "--max_tokens", str(args.max_tokens), "--summary_max_tokens",
        str(args.summary_max_tokens), "--seed", str(args.seed),
    ]  # fmt: skip


def run_offline(model_dir: str, args: ServeBenchArguments, problems: list, out: Path) -> dict:
    from inference.args import LeapArguments, ModelArguments
    from inference.backends import load_backend
    from inference.run import run_inference

    model_args, leap_args = parse_config(
        (ModelArguments, LeapArguments), ["--model", model_dir, *settings(args)], "bench", ""
    )
    backend = load_backend(model_args)
    try:
        run_inference(model_args, leap_args, problems[:1], out / "warm-up", backend=backend)
        start = time.perf_counter()
        summary = run_inference(
            model_args, leap_args, problems, out / "infer", backend=backend, progress=False
        )
        seconds = time.perf_counter() - start
    finally:
        backend.close()
    return {"tokens": summary["generated_tokens"], "seconds": seconds}


def run_served(model_dir: str, args: ServeBenchArguments, problems: list, out: Path) -> dict:
    import httpx

    from serving.requests import served_name
    from tests.served import Server

    server = Server(Path(model_dir), out / "served", *settings(args))
    name = "leap-" + served_name(model_dir)

    def ask(problem) -> tuple[float, int]:
        body = {
            "model": name,
            "messages": [{"role": "user", "content": problem.problem}],
            "n": args.n,
            "seed": args.seed,
            "leapt": {"problem_id": problem.id},
        }
        sent = time.perf_counter()
        reply = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=3600)
        reply.raise_for_status()
        return time.perf_counter() - sent, reply.json()["usage"]["completion_tokens"]

    try:
        ask(problems[0])  # warm-up, as (a) had
        start = time.perf_counter()
        with ThreadPoolExecutor(len(problems)) as pool:
            answers = list(pool.map(ask, problems))
        seconds = time.perf_counter() - start
    finally:
        server.stop()
    return {
        "tokens": sum(tokens for _, tokens in answers),
        "seconds": seconds,
        "latencies": [latency for latency, _ in answers],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    (args,) = parse_config((ServeBenchArguments,), argv, "benchmarks/serve.py", "")
    from inference.args import EMBEDDED_MODEL
    from inference.models import resolve_model
    from inference.problems import synthetic_problems

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or EMBEDDED_MODEL
        if model_dir == "tiny":
            from tests.tiny_model import build_tiny_model

            model_dir = str(build_tiny_model(Path(tmp) / "tiny"))
        elif model_dir == EMBEDDED_MODEL:
            from inference.args import ModelArguments

            model_dir = str(resolve_model(ModelArguments()))
        problems = synthetic_problems(args.num_problems, seed=args.seed)
        print(
            f"{args.backend} backend, {model_dir}, {args.num_problems} problems x {args.n} paths, "
            f"T={args.T}, max_tokens={args.max_tokens}",
            flush=True,
        )
        runs = {"infer": run_offline, "serve": run_served}
        measured: dict[str, list[dict]] = {"infer": [], "serve": []}
        for r in range(args.repeats):
            for label in ("infer", "serve") if r % 2 == 0 else ("serve", "infer"):
                row = runs[label](model_dir, args, problems, Path(tmp) / f"{label}-{r}")
                measured[label].append(row)
                print(
                    f"  {label:<6} {row['tokens']:>7} tokens  {row['seconds']:7.2f} s  "
                    f"{row['tokens'] / row['seconds']:8.1f} tokens/s",
                    flush=True,
                )
    rows: dict[str, dict] = {}
    for label, results in measured.items():
        total = {k: sum(row[k] for row in results) for k in ("tokens", "seconds")}
        rows[label] = {**total, "tokens_per_s": total["tokens"] / total["seconds"]}
    latencies = sorted(x for row in measured["serve"] for x in row["latencies"])
    rows["serve"]["p50"] = statistics.median(latencies)
    rows["serve"]["p95"] = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    ratio = rows["serve"]["tokens_per_s"] / rows["infer"]["tokens_per_s"]
    serve = rows["serve"]
    print(f"  serve / infer tokens/s: {ratio:.3f} (totals over {args.repeats} round(s))")
    print(f"  served request latency: p50 {serve['p50']:.2f} s, p95 {serve['p95']:.2f} s")
    result = {
        "rows": rows,
        "ratio": ratio,
        "same_tokens": serve["tokens"] == rows["infer"]["tokens"],
    }
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

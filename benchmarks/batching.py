"""Does submitting every active problem's paths in one backend call pay off?

The engine sends the requests of all problems in flight to the backend
together (``concurrent_problems``), so a batching backend sees N x problems
sequences per call instead of N.  This script runs the same LeaP workload
side by side with one problem in flight at a time and with all of them, on
the ``hf`` backend and a tiny model built on the spot (or ``--model DIR``),
alternating the two settings over ``--repeats`` rounds, and prints wall times
and their ratio.  Outputs go to a temporary folder and are thrown away.

    python benchmarks/batching.py --problems 8 --n 4 --repeats 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _time_run(model_dir: str, args: argparse.Namespace, concurrent: int, out: Path) -> float:
    from inference.args import DataArguments, LeapArguments, ModelArguments
    from inference.backends import load_backend
    from inference.run import run_inference

    model_args = ModelArguments(model=model_dir, backend="hf", hf_batch_size=64)
    leap_args = LeapArguments(n=args.n, T=args.T, top_k=1, max_tokens=args.max_tokens, seed=1)
    data_args = DataArguments(problems="synthetic", num_synthetic=args.problems)
    backend = load_backend(model_args)
    try:
        start = time.perf_counter()
        run_inference(
            model_args,
            leap_args,
            data_args,
            backend=backend,
            output_dir=out,
            progress=False,
            max_concurrent_problems=concurrent,
        )
        return time.perf_counter() - start
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: a tiny Qwen2)")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--T", type=int, default=16)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from tests.tiny_model import build_tiny_model

            model_dir = str(build_tiny_model(Path(tmp) / "tiny"))
        times: dict[str, list[float]] = {"one at a time": [], "all together": []}
        for rep in range(args.repeats):
            for label, concurrent in (("one at a time", 1), ("all together", args.problems)):
                out = Path(tmp) / f"{label.replace(' ', '_')}-{rep}"
                times[label].append(_time_run(model_dir, args, concurrent, out))
        best = {label: min(v) for label, v in times.items()}
        print(
            f"workload: {args.problems} problems x {args.n} paths, T={args.T}, "
            f"max_tokens={args.max_tokens}, hf backend, best of {args.repeats}"
        )
        for label, seconds in best.items():
            print(f"  {label:<14} {seconds:8.2f} s")
        print(
            f"speed-up (one at a time / all together): "
            f"{best['one at a time'] / best['all together']:.2f}x"
        )


if __name__ == "__main__":
    main()

"""``max_turns`` reproduces the block and chunk counts of the authors' loop (docs/fidelity.md).

The authors' code samples a fixed number of turns of up to T tokens each and
runs a LeaP block between two turns; a path whose turn ends with the
think-end tag leaves the loop, and every path still open after the last turn
gets the answer prompt.  :func:`authors_counts` follows that control flow
(``leap/leap.py``, ``LeaP.infer_batch``) step by step on the same scripted
model, and the engine's counts must equal it, whatever the summaries do.
"""

from __future__ import annotations

import pytest

from inference.args import LeapArguments
from inference.protocol import load_protocol
from tests.scripted_model import EOS, ONE_PROBLEM, RAMBLE, run_scripted

PROTO = load_protocol()
N = 4
T = 16
#: the path whose thinking ends in its second turn (it leaves the authors' loop there)
EARLY = 2


def reasoning_text(path: int, turn: int) -> str:
    if path == EARLY and turn == 2:
        return f"so it is 4. {PROTO.think_end} The answer is \\boxed{{4}}."
    return RAMBLE


def authors_counts(max_turns: int, ends: dict[int, int]) -> tuple[dict, dict, set]:
    """Chunks and blocks per path, and the paths given the answer prompt, in the code's loop.

    ``ends[path]`` is the turn whose chunk ends with the think-end tag.
    """
    chunks = {p: 0 for p in range(N)}
    blocks = {p: 0 for p in range(N)}
    open_paths = list(range(N))

    def sample(turn: int) -> None:
        nonlocal open_paths
        for p in open_paths:
            chunks[p] += 1
        open_paths = [p for p in open_paths if ends.get(p) != turn]

    def mixture() -> None:
        for p in open_paths:
            blocks[p] += 1

    sample(1)  # first sampling, then the first block
    mixture()
    for turn in range(max_turns - 1):
        sample(turn + 2)
        if not open_paths or turn == max_turns - 2:
            break
        mixture()
    return chunks, blocks, set(open_paths)


def script_for(summary: str):
    def script(path, turn, phase):
        if phase == "summary":
            return summary
        if phase == "forced":
            return "4}"
        if phase == "reason" and path == EARLY and turn > 2:
            return ("", EOS)  # the answer phase after the think-end tag ends at once
        return reasoning_text(path, turn)

    return script


def engine_counts(tmp_path, model_dir, method: str, max_turns: int, summary: str):
    args = LeapArguments(
        method=method,
        n=N,
        top_k=1,
        T=T,
        max_turns=max_turns,
        max_tokens=100_000,  # the turn cap, not the budget, ends every path
        summary_max_tokens=8,
        forced_answer_tokens=4,
    )
    (trace,), backend = run_scripted(tmp_path, model_dir, script_for(summary), args, [ONE_PROBLEM])
    chunks = {p: 0 for p in range(N)}
    for call in backend.calls:
        for request in call:
            path, _turn, phase = backend._where[request.seed]
            if phase == "reason" and PROTO.think_end in request.stop:  # thinking, not answering
                chunks[path] += 1
    blocks = {p: sum(1 for r in trace.routing if r.path == p) for p in range(N)}
    forced = {i for i, p in enumerate(trace.paths) if p.finish == "forced"}
    return chunks, blocks, forced


@pytest.mark.parametrize("max_turns", [1, 2, 3, 5])
@pytest.mark.parametrize(
    "summary",
    [f"short note{PROTO.summary_close}", RAMBLE],
    ids=["summary-stops-early", "summary-hits-cap"],
)
def test_max_turns_gives_the_authors_block_and_chunk_counts(
    tmp_path, tiny_model_dir, max_turns, summary
):
    chunks, blocks, forced = engine_counts(tmp_path, tiny_model_dir, "leap", max_turns, summary)
    want_chunks, want_blocks, want_forced = authors_counts(max_turns, {EARLY: 2})
    assert chunks == want_chunks
    assert blocks == want_blocks
    assert forced == want_forced


def test_leap_t_summary_opened_by_the_model_counts_as_one_turn(tmp_path, tiny_model_dir):
    """A chunk the model stops early at its own ``<summarize>`` is one of the turns."""

    def script(path, turn, phase):
        if phase == "reason" and turn == 1:
            return f"Quick start. {PROTO.summary_open} I have a plan"
        return script_for(f"note{PROTO.summary_close}")(path, turn, phase)

    args = LeapArguments(
        method="leap_t", n=N, top_k=1, T=T, max_turns=3, max_tokens=100_000, summary_max_tokens=8
    )
    (trace,), _ = run_scripted(tmp_path, tiny_model_dir, script, args, [ONE_PROBLEM])
    _, want_blocks, want_forced = authors_counts(3, {EARLY: 2})
    assert {p: sum(1 for r in trace.routing if r.path == p) for p in range(N)} == want_blocks
    assert {i for i, p in enumerate(trace.paths) if p.finish == "forced"} == want_forced
    assert all(f"Quick start. {PROTO.summary_open}" in p.text(["model"]) for p in trace.paths)


def test_without_max_turns_the_budget_alone_allows_an_extra_block(tmp_path, tiny_model_dir):
    """Why the setting exists: the budget recipe gives a 4th block when summaries stop early."""
    args = LeapArguments(
        n=N, top_k=1, T=T, max_tokens=4 * T + 3 * 8, summary_max_tokens=8, forced_answer_tokens=4
    )
    (trace,), _ = run_scripted(
        tmp_path, tiny_model_dir, script_for(f"ok{PROTO.summary_close}"), args, [ONE_PROBLEM]
    )
    assert max(sum(1 for r in trace.routing if r.path == p) for p in range(N)) >= 4
    assert authors_counts(4, {})[1] == {p: 3 for p in range(N)}


def test_max_turns_below_one_is_refused():
    from leapt.config import ConfigError

    with pytest.raises(ConfigError, match="max_turns"):
        LeapArguments(max_turns=0)


def test_context_estimate_counts_the_blocks_max_turns_allows():
    from inference.context import context_need

    for turns, blocks in [(1, 1), (2, 1), (4, 3), (None, 100_000 // T)]:
        args = LeapArguments(n=N, top_k=1, T=T, max_turns=turns, max_tokens=100_000)
        assert context_need(args, [ONE_PROBLEM], PROTO).blocks == min(blocks, 100_000 // T)

"""No protocol text of ours quotes a benchmark problem, and ``leapt eval`` warns when one does.

The authors' worked examples are benchmark items (their math example is an
AIME 2025 problem), so their LeaP runs see an item the baseline never does
(docs/fidelity.md).  Ours must not: every sentence the packaged protocol and
the MoA wording can show a model is checked against every registered
benchmark that loads offline, with the project's own decontamination index
(8-word n-grams), on the committed benchmark fixture (tests/data).  GPQA
Diamond is gated (its fixture rows are invented stand-ins, in a csv the local loader
does not read); its items are science questions our
arithmetic-free wording cannot quote by chance, but it is not checked here.
"""

from __future__ import annotations

import json

import pytest

from data_gen.decontaminate import build_index
from eval.benchmarks import BENCHMARKS
from eval.cli import warn_protocol_overlap
from eval.overlap import protocol_overlaps
from inference.methods.moa import wording
from inference.protocol import load_protocol
from leapt.cli import main as leapt

FIXTURES = {
    "aime24": "aime_2024.json",
    "aime25": "aime_2025.json",
    "aimo25": "aimo_2025.json",
    "math500": "hub/HuggingFaceH4/MATH-500/test.jsonl",
}
#: registered benchmarks made offline (no file needed)
GENERATED = [name for name, b in BENCHMARKS.items() if b.source in ("builtin:easy", "synthetic")]


def our_texts() -> dict[str, str]:
    proto = load_protocol()
    texts = proto.texts()
    tags = {"open": "<summarize>", "close": "</summarize>"}
    tags |= {"comment_open": "<comment>", "comment_close": "</comment>"}
    texts["preamble (filled in)"] = proto.preamble.format(**tags)
    texts["prefill (filled in)"] = proto.prefill.format(**tags)
    texts.update({f"moa.{k}": v for k, v in wording().items()})
    return texts


@pytest.fixture(scope="module")
def index(reference_data):
    local = {name: str(reference_data / f) for name, f in FIXTURES.items()}
    return build_index(list(FIXTURES) + GENERATED, n=8, local_files=local)


def test_every_registered_benchmark_is_checked_but_gated_gpqa():
    assert set(FIXTURES) | set(GENERATED) | {"gpqa_diamond"} == set(BENCHMARKS)


def test_every_wording_key_is_checked():
    texts = our_texts()
    for key in ("preamble", "prefill", "math_instruction", "choice_instruction", "reflection_cue"):
        assert key in texts
    assert any(k.startswith("summary_triggers[") for k in texts)
    assert "no_peers_text" in texts and "forced_answer_math" in texts
    assert "moa.previous_answers_intro" in texts


def test_no_protocol_text_shares_an_8gram_with_a_benchmark_problem(index):
    assert protocol_overlaps(our_texts(), index) == []


def test_the_check_finds_a_quoted_problem(index, reference_data):
    problem = json.loads((reference_data / "aime_2025.json").read_text())[0]["problem"]
    texts = {"preamble": "For example: " + problem.lower().replace("$", "")}
    ((key, hit),) = protocol_overlaps(texts, index)
    assert key == "preamble" and hit.benchmark == "aime25"


def test_leapt_eval_warns_when_a_protocol_file_quotes_a_scored_problem(
    tmp_path, tiny_model_dir, reference_data, caplog
):
    rows = json.loads((reference_data / "aime_2024.json").read_text())[:1]
    bench = tmp_path / "aime24.jsonl"
    bench.write_text(json.dumps({"id": "a1", "problem": rows[0]["problem"], "answer": "1"}) + "\n")
    quoted = " ".join(rows[0]["problem"].split()[:12])
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(f"preamble: {json.dumps(' For instance: ' + quoted)}\n")
    argv = ["eval", "--model", str(tiny_model_dir), "--backend", "hf", "--dtype", "float32"]
    argv += ["--benchmarks", "aime24", "--local_files", f"aime24={bench}", "--methods", "leap"]
    argv += ["--n", "2", "--top_k", "1", "--T", "4", "--max_tokens", "4"]
    argv += ["--summary_max_tokens", "2", "--forced_answer_tokens", "1", "--report", "false"]
    argv += ["--protocol", str(protocol), "--output_dir", str(tmp_path / "out")]
    with caplog.at_level("WARNING"):
        assert leapt(argv) == 0
    warned = [r.getMessage() for r in caplog.records if "shares the words" in r.getMessage()]
    assert len(warned) == 1 and "'preamble'" in warned[0] and "aime24 problem a1" in warned[0]


def test_packaged_protocol_gives_no_warning(reference_data):
    from eval.benchmarks import load_benchmark

    loaded = {name: load_benchmark(name, local=reference_data / f) for name, f in FIXTURES.items()}
    assert warn_protocol_overlap(None, loaded) == []


def test_the_announced_example_holds_no_number_to_copy():
    """An example note ending "Current answer: 7" was copied as the answer on 56 of 64 paths
    by the embedded 135M model; the example must hold no number a path could copy."""
    import re

    proto = load_protocol()
    for key in ("preamble", "prefill"):
        text = re.sub(r"Peer \d+:", "", getattr(proto, key))  # the peer labels are numbered
        assert not re.search(r"\d", text), key

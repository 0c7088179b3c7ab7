"""Loss masks and input checks of `leapt train`, on the tiny tokenizer (no model load needed).

Also home of :func:`write_sft_dataset`, the small `leapt generate`-shaped dataset
the other training tests train on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leapt.config import ConfigError
from training.dataset import (
    AUTO,
    IGNORE_INDEX,
    load_sft_dataset,
    prepare_dataset,
    recorded_protocol,
    render_prompt_ids,
    resolve_summary_open,
    tokenize_example,
)

SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def sft_row(problem: str, pieces: list[tuple[str, str]]) -> dict:
    """One dataset row in the `leapt generate` schema from (kind, text) pieces after the prompt."""
    segments = [{"kind": "prompt", "text": problem}] + [{"kind": k, "text": t} for k, t in pieces]
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": problem},
        {"role": "assistant", "content": "".join(t for _, t in pieces)},
    ]
    return {"messages": messages, "segments": segments, "finish": "eos"}


def leap_row(a: int, b: int) -> dict:
    """A LeaP-shaped path: reasoning, engine cue + summary, a peer block, more reasoning."""
    return sft_row(
        f"What is {a} + {b}?",
        [
            ("model", f"Let me think step by step. First compute {a} + {b}."),
            ("prompt", " Let me summarize. <summarize>"),
            ("model", f" So far I found that {a} + {b} = {a + b}. </summarize>"),
            ("peer", f' <comment> Peer 1: "I think the answer is {a + b + 1}." </comment>'),
            ("prompt", " Hmm, wait. Let me reconsider."),
            ("model", f" Check: {a + b} - {b} = {a}. The answer is \\boxed{{{a + b}}}."),
        ],
    )


def write_sft_dataset(directory: Path, n: int = 24, fmt: str = "jsonl") -> Path:
    """Write ``n`` LeaP-shaped rows as a `load_dataset`-readable directory."""
    from datasets import Dataset

    directory.mkdir(parents=True, exist_ok=True)
    rows = [leap_row(3 + i % 7, 10 + (i * 3) % 11) for i in range(n)]
    if fmt == "jsonl":
        with (directory / "train-00000.jsonl").open("w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    else:
        Dataset.from_list(rows).to_parquet(str(directory / "train-00000.parquet"))
    return directory


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_trained_positions_are_exactly_the_model_segment_tokens(tokenizer):
    row = leap_row(12, 30)
    prompt_messages = row["messages"][:-1]
    example = tokenize_example(
        tokenizer, prompt_messages, row["segments"], train_on_eos=False, summary_open=None
    )

    # Independent reconstruction: the engine's prompt, then every segment's own tokens.
    prompt_text = tokenizer.apply_chat_template(
        prompt_messages, add_generation_prompt=True, tokenize=False
    )
    position = len(tokenizer.encode(prompt_text, add_special_tokens=False))
    expected_positions, expected_tokens = [], []
    for seg in row["segments"][1:]:
        ids = tokenizer.encode(seg["text"], add_special_tokens=False)
        if seg["kind"] == "model":
            expected_positions += range(position, position + len(ids))
            expected_tokens += ids
        position += len(ids)

    trained = [i for i, label in enumerate(example["labels"]) if label != IGNORE_INDEX]
    assert trained == expected_positions
    assert [example["input_ids"][i] for i in trained] == expected_tokens
    assert [example["labels"][i] for i in trained] == expected_tokens
    # the trained text is the model's words and nothing else
    model_text = "".join(s["text"] for s in row["segments"] if s["kind"] == "model")
    assert tokenizer.decode(expected_tokens) == model_text
    assert "Peer 1" not in tokenizer.decode(expected_tokens)
    # the whole sequence is the chat prompt followed by the assistant text
    assert tokenizer.decode(example["input_ids"]) == (
        prompt_text + row["messages"][-1]["content"] + tokenizer.eos_token
    )


def test_summary_open_tag_is_trained_but_not_the_trigger_sentence(tokenizer):
    row = leap_row(12, 30)
    tagged = tokenize_example(tokenizer, row["messages"][:-1], row["segments"], train_on_eos=False)
    plain = tokenize_example(
        tokenizer, row["messages"][:-1], row["segments"], train_on_eos=False, summary_open=None
    )
    # the tag changes which tokens are trained, never the tokens themselves
    assert tagged["input_ids"] == plain["input_ids"]
    extra = [
        i for i, (a, b) in enumerate(zip(tagged["labels"], plain["labels"], strict=True)) if a != b
    ]
    assert tokenizer.decode([tagged["input_ids"][i] for i in extra]).strip() == "<summarize>"
    trained = tokenizer.decode([t for t in tagged["labels"] if t != IGNORE_INDEX])
    assert "Let me summarize" not in trained and "Peer 1" not in trained


def engine_path(tokenizer, protocol, opening: str = "", method: str = "leap"):
    """A LeaP path built by the engine's own text functions, and its engine token ids."""
    from types import SimpleNamespace

    from inference.args import LeapArguments
    from inference.backends.base import GenerationResult
    from inference.engine import EngineContext
    from inference.problems import Problem

    backend = SimpleNamespace(tokenizer=tokenizer, model_name="r1-tiny")
    ctx = EngineContext(backend, protocol, LeapArguments(method=method))
    problem = Problem("p1", "What is 12 + 30?", "42")
    (path,) = ctx.new_paths(problem, 1)

    def model(text: str) -> None:
        ids = tokenizer.encode(text, add_special_tokens=False)
        ctx.add_model(path, GenerationResult(ids, text, "length"))

    model("First, 12 + 30: add the tens, 10 + 30 = 40, then 2 more.")
    ctx.add_text(path, "prompt", protocol.summary_request() + opening)
    model(" I have 12 + 30 = 42. </summarize>")
    ctx.add_text(path, "peer", protocol.peer_block(["The sum is 42."]))
    ctx.add_text(path, "prompt", protocol.reflection_cue)
    model("The peer agrees. The answer is \\boxed{42}.")
    path.finish("eos")
    trace = ctx.new_trace(problem, [path])
    # the user turn the engine rendered (announcing the protocol for `leap`, as harvest records)
    content = protocol.user_message(problem.problem, None, "math", ctx.announce)
    messages = [{"role": "user", "content": content}]
    return trace, messages, path.token_ids


@pytest.mark.parametrize("opening", ["", " So far,"])
def test_engine_and_training_see_the_same_ids_with_the_r1_tokenizer(r1_tokenizer_dir, opening):
    """R1-Distill merges the space before '<' into one token: the trained tag must keep it."""
    from transformers import AutoTokenizer

    from data_gen.sft_format import to_row
    from inference.protocol import load_protocol

    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    protocol = load_protocol()
    trace, messages, engine_ids = engine_path(tok, protocol, opening)
    row = to_row(trace, 0, messages, "synthetic")
    example = tokenize_example(tok, messages, row["segments"], finish=row["finish"])
    assert example["input_ids"][:-1] == engine_ids  # everything but the appended end-of-turn
    assert example["labels"][-1] == tok.eos_token_id

    trigger_ids = tok.encode(protocol.summary_request() + opening, add_special_tokens=False)
    start = next(
        i for i in range(len(engine_ids)) if engine_ids[i : i + len(trigger_ids)] == trigger_ids
    )
    trigger_labels = example["labels"][start : start + len(trigger_ids)]
    trained = [t for t in trigger_labels if t != IGNORE_INDEX]
    assert tok.convert_ids_to_tokens(trained) == ["Ġ<", "sum", "mar", "ize", ">"]
    # trained: the model's words, the tag where the engine opened the block, and EOS
    first, summary, last = (s["text"] for s in row["segments"] if s["kind"] == "model")
    all_trained = tok.decode([t for t in example["labels"] if t != IGNORE_INDEX])
    assert all_trained == first + " <summarize>" + summary + last + tok.eos_token


@pytest.mark.parametrize("sft_prompt", ["plain", "teacher"])
def test_a_row_trains_on_the_ids_its_inference_mode_sees(r1_tokenizer_dir, sft_prompt):
    """A `plain` row of an announced `leap` teacher is the path a `leap_t` student runs
    (no preamble, no pre-fill); a `teacher` row is the teacher's own path, id for id."""
    from transformers import AutoTokenizer

    from data_gen.harvest import RowPrompt
    from inference.protocol import load_protocol

    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    protocol = load_protocol()
    trace, _, teacher_ids = engine_path(tok, protocol)
    assert trace.config["protocol_switches"]["announce"] is True
    row = RowPrompt(protocol, tok, "math", plain=sft_prompt == "plain").row(trace, 0, "synthetic")
    example = tokenize_example(tok, row["messages"][:-1], row["segments"], finish=row["finish"])
    student_ids = engine_path(tok, protocol, method="leap_t")[2]
    assert example["input_ids"][:-1] == (student_ids if sft_prompt == "plain" else teacher_ids)
    assert (protocol.assistant_prefill(True) in row["messages"][-1]["content"]) == (
        sft_prompt == "teacher"
    )


def test_a_trace_whose_prompt_the_protocol_no_longer_renders_is_refused(r1_tokenizer_dir):
    from transformers import AutoTokenizer

    from data_gen.harvest import RowPrompt
    from inference.protocol import load_protocol

    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    protocol = load_protocol()
    trace, _, _ = engine_path(tok, protocol)
    trace.paths[0].segments[1].text = "Let me begin."  # a pre-fill the protocol does not have
    with pytest.raises(ConfigError, match="problem p1: the trace's prompt segments differ"):
        RowPrompt(protocol, tok, "math", plain=True).row(trace, 0, "synthetic")


def test_end_of_turn_is_trained_only_after_a_natural_end_of_model_text(tokenizer):
    row = leap_row(1, 2)
    prompt, segments = row["messages"][:-1], row["segments"]
    natural = tokenize_example(tokenizer, prompt, segments, finish="think_end")
    without = tokenize_example(tokenizer, prompt, segments, train_on_eos=False, finish="eos")
    assert natural["input_ids"] == without["input_ids"]
    assert natural["labels"][-1] == tokenizer.eos_token_id
    assert natural["labels"][:-1] == without["labels"][:-1]
    for finish in ("budget", "forced", None):  # cut or forced to answer: no lesson in stopping
        example = tokenize_example(tokenizer, prompt, segments, finish=finish)
        assert example["labels"][-1] == IGNORE_INDEX
    ends_with_peer = sft_row("Q?", [("model", "I think 5."), ("peer", " <comment> x </comment>")])
    example = tokenize_example(
        tokenizer, ends_with_peer["messages"][:-1], ends_with_peer["segments"], finish="eos"
    )
    assert example["labels"][-1] == IGNORE_INDEX
    # EOS sampled right after the reflection cue: an empty model segment, not a natural end
    quits = sft_row("Q?", [("model", "I think 5."), ("prompt", " Compare notes."), ("model", "")])
    example = tokenize_example(tokenizer, quits["messages"][:-1], quits["segments"], finish="eos")
    assert example["labels"][-1] == IGNORE_INDEX


def test_end_of_turn_exclusions_are_counted(tokenizer):
    from datasets import Dataset

    rows = [leap_row(1, 2), leap_row(2, 3), leap_row(3, 4)]
    rows[1]["finish"] = "budget"
    rows[2]["segments"].append({"kind": "model", "text": ""})
    rows[2]["segments"].insert(-1, {"kind": "prompt", "text": " Compare notes."})
    rows[2]["messages"][-1]["content"] += " Compare notes."
    _, stats = prepare_dataset(Dataset.from_list(rows), tokenizer, max_length=None)
    assert (
        stats.eos_trained,
        stats.eos_untrained_no_natural_end,
        stats.eos_untrained_after_engine_text,
    ) == (1, 1, 1)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_local_dataset_loads_and_prepares(tmp_path, tokenizer, fmt):
    data_dir = write_sft_dataset(tmp_path / "data", n=5, fmt=fmt)
    dataset = load_sft_dataset(str(data_dir))
    prepared, stats = prepare_dataset(dataset, tokenizer, max_length=None)
    assert prepared.column_names == ["input_ids", "labels"]
    assert stats.kept == stats.examples == 5
    assert 0 < stats.trained_tokens < stats.tokens


def test_overlong_examples_are_truncated_or_dropped_and_counted(tmp_path, tokenizer):
    from datasets import Dataset

    short = sft_row("Hi?", [("model", "5.")])
    long = leap_row(3, 4)
    dataset = Dataset.from_list([short, long, long])
    limit = len(tokenize_example(tokenizer, short["messages"][:-1], short["segments"])["input_ids"])
    limit = max(limit, len(render_prompt_ids(tokenizer, long["messages"][:-1])) + 3)

    truncated, stats = prepare_dataset(dataset, tokenizer, max_length=limit, overlong="truncate")
    assert (stats.kept, stats.truncated, stats.dropped_overlong) == (3, 2, 0)
    assert max(len(ids) for ids in truncated["input_ids"]) == limit
    full = tokenize_example(tokenizer, long["messages"][:-1], long["segments"], finish="eos")
    assert stats.truncated_tokens == 2 * (len(full["input_ids"]) - limit)
    lost = sum(label != IGNORE_INDEX for label in full["labels"][limit:])
    assert stats.truncated_trained_tokens == 2 * lost > 0
    assert stats.tokens == sum(len(ids) for ids in truncated["input_ids"])

    _, stats = prepare_dataset(dataset, tokenizer, max_length=limit, overlong="drop")
    assert (stats.kept, stats.truncated, stats.dropped_overlong) == (1, 0, 2)


def test_examples_with_nothing_to_train_are_reported(tokenizer):
    from datasets import Dataset

    only_peers = sft_row("Q?", [("peer", ' <comment> Peer 1: "7" </comment>')])
    dataset = Dataset.from_list([leap_row(1, 1), only_peers])
    _, stats = prepare_dataset(dataset, tokenizer, max_length=None)
    assert (stats.kept, stats.dropped_nothing_to_train) == (1, 1)
    with pytest.raises(ConfigError, match="no trainable example"):
        prepare_dataset(Dataset.from_list([only_peers]), tokenizer, max_length=None)


def test_dataset_without_segments_is_rejected_naming_the_column(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": leap_row(1, 2)["messages"]}) + "\n")
    with pytest.raises(ConfigError, match="no 'segments' column"):
        load_sft_dataset(str(path))


def test_inconsistent_row_is_rejected_naming_the_row(tokenizer):
    from datasets import Dataset

    bad = leap_row(1, 2)
    bad["messages"][-1]["content"] += " extra"
    with pytest.raises(ConfigError, match="row 1: the assistant message"):
        prepare_dataset(Dataset.from_list([leap_row(2, 2), bad]), tokenizer, max_length=None)


def test_a_leapt_generate_output_folder_trains_on_the_model_text_only(tmp_path, tokenizer):
    """The real `leapt generate` writer (parquet under data/ beside stats.json and raw jsonl)."""
    from data_gen.output import write_dataset
    from data_gen.sft_format import to_row
    from inference.trace import PathRecord, Segment, Trace

    row = leap_row(4, 5)
    prompt_messages = row["messages"][:-1]
    rendered = tokenizer.apply_chat_template(
        prompt_messages, add_generation_prompt=True, tokenize=False
    )
    segments = [Segment("prompt", rendered)] + [Segment(**s) for s in row["segments"][1:]]
    trace = Trace(id="p1", problem="What is 4 + 5?", answer="9", model="teacher")
    trace.paths = [PathRecord(segments=segments, final_answer="9", correct=True)]
    out = write_dataset(tmp_path / "gen", [to_row(trace, 0, prompt_messages, "synthetic")], {})
    (out / "raw").mkdir()
    (out / "raw" / "traces.jsonl").write_text(trace.to_json() + "\n")

    dataset = load_sft_dataset(str(out))
    prepared, stats = prepare_dataset(
        dataset, tokenizer, max_length=None, train_on_eos=False, summary_open=None
    )
    assert (stats.examples, stats.kept, stats.prompt_differs) == (1, 1, 0)
    labels = [t for t in prepared[0]["labels"] if t != IGNORE_INDEX]
    assert tokenizer.decode(labels) == "".join(s.text for s in segments if s.kind == "model")


def test_summary_tag_follows_the_protocol_recorded_with_the_dataset(tmp_path):
    data = write_sft_dataset(tmp_path / "data", n=1)
    assert recorded_protocol(str(data)) is None  # made before protocols were recorded
    assert resolve_summary_open(AUTO, None, "d") == "<summarize>"
    (data / "stats.json").write_text(json.dumps({"protocol": {"summary_open": "<sum>"}}))
    recorded = recorded_protocol(str(data))
    assert resolve_summary_open(AUTO, recorded, "d") == "<sum>"
    assert resolve_summary_open("<sum>", recorded, "d") == "<sum>"
    assert resolve_summary_open(None, recorded, "d") is None
    with pytest.raises(ConfigError, match="made with the protocol tag '<sum>'"):
        resolve_summary_open("<summarize>", recorded, "d")

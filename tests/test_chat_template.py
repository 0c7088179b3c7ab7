"""``chat_template`` and ``system_prompt``: the ids training builds are the ids inference feeds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from leapt.config import ConfigError

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SYSTEM = "You are a careful competition solver. Check every step."


def engine_path(tokenizer, leap_args):
    """A LeaP-T path written by the engine's own functions; its trace and engine token ids."""
    from inference.backends.base import GenerationResult
    from inference.engine import EngineContext
    from inference.problems import Problem
    from inference.protocol import load_protocol

    protocol = load_protocol()
    backend = SimpleNamespace(tokenizer=tokenizer, model_name="r1-tiny")
    ctx = EngineContext(backend, protocol, leap_args)
    problem = Problem("p1", "What is 12 + 30?", "42")
    (path,) = ctx.new_paths(problem, 1)

    def model(text: str) -> None:
        ids = tokenizer.encode(text, add_special_tokens=False)
        ctx.add_model(path, GenerationResult(ids, text, "length"))

    model("First, 12 + 30: add the tens, 10 + 30 = 40, then 2 more.")
    ctx.add_text(path, "prompt", protocol.summary_request())
    model(" I have 12 + 30 = 42. </summarize>")
    ctx.add_text(path, "peer", protocol.peer_block(["The sum is 42."]))
    ctx.add_text(path, "prompt", protocol.reflection_cue)
    model("The peer agrees. The answer is \\boxed{42}.")
    path.finish("eos")
    return protocol, ctx.new_trace(problem, [path]), path.token_ids


def trainer_ids(tokenizer_dir, row, chat_template=None, system_prompt=None) -> list[int]:
    """The ids `leapt train` builds for ``row``, through its own tokenizer loading."""
    from datasets import Dataset

    from training.dataset import prepare_dataset
    from training.sft import _load_tokenizer

    tok = _load_tokenizer(
        SimpleNamespace(model_name_or_path=str(tokenizer_dir), model_revision=None),
        SimpleNamespace(trust_remote_code=False),
        chat_template,
    )
    dataset, _ = prepare_dataset(
        Dataset.from_list([row]), tok, max_length=None, system_prompt=system_prompt
    )
    return dataset[0]["input_ids"][:-1]  # all but the appended end-of-turn


@pytest.fixture
def template_file(tmp_path):
    path = tmp_path / "plain.jinja"
    path.write_text(TEMPLATE)
    return path


def test_trainer_ids_equal_engine_ids_with_custom_template_and_system_prompt(
    r1_tokenizer_dir, template_file
):
    from transformers import AutoTokenizer

    from data_gen.harvest import RowPrompt
    from inference.args import LeapArguments

    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    leap_args = LeapArguments(
        method="leap_t", chat_template=str(template_file), system_prompt=SYSTEM
    )
    protocol, trace, engine_ids = engine_path(tok, leap_args)
    prompt = trace.paths[0].segments[0].text
    assert prompt.startswith(f"<|system|>\n{SYSTEM}<|end|>\n<|user|>\n")
    assert prompt.endswith("<|assistant|>\n")

    row = RowPrompt(protocol, tok, "math", plain=True, system_prompt=SYSTEM).row(trace, 0, "x")
    assert row["messages"][0] == {"role": "system", "content": SYSTEM}
    assert trainer_ids(r1_tokenizer_dir, row, str(template_file)) == engine_ids
    # the same template given as Jinja text instead of a file
    assert trainer_ids(r1_tokenizer_dir, row, TEMPLATE) == engine_ids
    # without it the trainer renders R1's own template: other ids, which is why the key exists
    assert trainer_ids(r1_tokenizer_dir, row) != engine_ids


def test_train_system_prompt_sets_the_rows_system_message(r1_tokenizer_dir, template_file):
    from transformers import AutoTokenizer

    from data_gen.harvest import RowPrompt
    from inference.args import LeapArguments

    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    # rows harvested without a system prompt ...
    protocol, trace, _ = engine_path(tok, LeapArguments(method="leap_t"))
    row = RowPrompt(protocol, tok, "math", plain=True).row(trace, 0, "x")
    assert all(m["role"] != "system" for m in row["messages"])
    # ... trained with one give the ids a student run with that system prompt sees
    student = LeapArguments(method="leap_t", chat_template=str(template_file), system_prompt=SYSTEM)
    _, _, student_ids = engine_path(AutoTokenizer.from_pretrained(r1_tokenizer_dir), student)
    got = trainer_ids(r1_tokenizer_dir, row, str(template_file), system_prompt=SYSTEM)
    assert got == student_ids


def test_trained_tokenizer_keeps_the_template(r1_tokenizer_dir, template_file, tmp_path):
    from transformers import AutoTokenizer

    from training.sft import _load_tokenizer

    tok = _load_tokenizer(
        SimpleNamespace(model_name_or_path=str(r1_tokenizer_dir), model_revision=None),
        SimpleNamespace(trust_remote_code=False),
        str(template_file),
    )
    tok.save_pretrained(tmp_path / "student")
    assert AutoTokenizer.from_pretrained(tmp_path / "student").chat_template == TEMPLATE


@pytest.mark.parametrize("value", ["missing.jinja", "templates/none", "just words, no jinja"])
def test_a_bad_chat_template_names_the_key(value):
    from inference.args import LeapArguments

    with pytest.raises(ConfigError, match="chat_template"):
        LeapArguments(chat_template=value)


def test_chat_template_and_system_prompt_are_keys_of_every_stage():
    from data_gen.args import GenerateArguments  # noqa: F401  (generate reuses LeapArguments)
    from inference.args import LeapArguments
    from training.recipe import TrainScriptArguments

    for cls in (LeapArguments, TrainScriptArguments):
        names = {f for f in cls.__dataclass_fields__}
        assert {"chat_template", "system_prompt"} <= names, cls

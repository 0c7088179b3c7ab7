"""`leapt publish` and `leapt train --push_to_hub`: what reaches the Hub, with which card.

A tiny model is trained for two steps and evaluated with `leapt eval`; the
uploads run through huggingface_hub (and TRL's push_to_hub) with only the HTTP
transport replaced by an in-memory Hub (tests/fake_hub.py).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, ModelCard

from leapt.cli import main as leapt
from tests.fake_hub import FakeHub, serve
from tests.test_data_gen_output import shard_dir, trace
from tests.test_training_data import write_sft_dataset
from tests.training_runs import smoke_argv

TOKEN = "hf_" + "publishTestSecretNeverPrinted42"  # fake, split so scanners do not flag it
MODEL_FILES = {
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
}


def train_argv(model_dir: Path, data_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return ["train", *smoke_argv(model_dir, data_dir, out_dir, "--max_steps", "2", *extra)]


@pytest.fixture
def hub(monkeypatch) -> FakeHub:
    yield from serve(monkeypatch)


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> Path:
    return write_sft_dataset(tmp_path_factory.mktemp("data"), n=4)


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, sft_data, tmp_path_factory) -> Path:
    """A checkpoint trained by `leapt train` and evaluated by `leapt eval` into <ckpt>/eval."""
    root = tmp_path_factory.mktemp("evaluated")
    ckpt = root / "ckpt"
    assert leapt(train_argv(tiny_model_dir, sft_data, ckpt)) == 0
    problems = root / "aime.jsonl"
    problems.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
            for i in range(2)
        )
    )
    evaluation = [
        "eval", "--model", str(ckpt), "--backend", "hf", "--dtype", "float32",
        "--benchmarks", "aime24", "--methods", "independent", "leap",
        "--local_files", f"aime24={problems}", "--n", "2", "--top_k", "1", "--T", "8",
        "--max_tokens", "16", "--summary_max_tokens", "4", "--forced_answer_tokens", "4",
        "--output_dir", str(ckpt / "eval"),
    ]  # fmt: skip
    assert leapt(evaluation) == 0
    return ckpt


def copy_checkpoint(src: Path, dst: Path) -> Path:
    """The checkpoint's top-level files without its eval folder."""
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file():
            shutil.copy2(path, dst / path.name)
    return dst


def dry_run(capsys, *argv: str) -> tuple[list[str], str]:
    """(file list, card) printed by a dry run."""
    assert leapt(["publish", *argv, "--dry_run", "true"]) == 0
    out = capsys.readouterr().out
    listing, card = out.split("README.md (the card below)\n\n", 1)
    return [line.strip() for line in listing.splitlines()[1:] if line.strip()], card


def test_dry_run_shows_the_model_files_and_a_card_with_the_measured_results(
    evaluated,
    hub,
    capsys,
):
    files, text = dry_run(capsys, str(evaluated), "--repo_id", "me/tiny-leapt")
    assert set(files) == MODEL_FILES  # not training_args.bin, leapt_training.json, eval/, ...
    assert not hub.created and not hub.commits

    card = ModelCard(text, ignore_metadata_errors=False)
    results = json.loads((evaluated / "eval" / "results.json").read_text())
    measured = results["benchmarks"]["aime24"]["methods"]
    by_name = {
        r.metric_name.split(" ")[0] + " " + r.metric_args["method"]: r
        for r in card.data.eval_results
    }
    assert len(by_name) == 4  # Pass@1 and Cons@2 for independent and leap
    for method, m in measured.items():
        pass1, cons = by_name[f"Pass@1 {method}"], by_name[f"Cons@2 {method}"]
        assert pass1.metric_value == round(100 * m["pass@1"], 2)
        assert cons.metric_value == round(100 * m["cons@n"], 2) and cons.metric_type == "cons@2"
        for result in (pass1, cons):
            assert result.dataset_name == "aime24"
            args = result.metric_args
            assert (args["n"], args["T"], args["router"], args["max_tokens"]) == (
                2,
                8,
                m["config"]["router"],
                16,
            )
    assert card.data.license == "other" and "leapt" in card.data.tags
    assert "leapt infer --model me/tiny-leapt --method leap_t" in text
    assert "| learning_rate | 0.001 |" in text and "| loss_on_segments | ['model'] |" in text
    assert "Not evaluated" not in text


def test_upload_commits_only_the_allow_list_and_never_shows_the_token(
    evaluated,
    hub,
    capsys,
    caplog,
    monkeypatch,
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    argv = ["publish", str(evaluated), "--repo_id", "me/tiny-leapt", "--private", "true"]
    assert leapt(argv) == 0

    assert hub.created == [{"type": "model", "repo_id": "me/tiny-leapt", "visibility": "private"}]
    (commit,) = hub.commits
    assert set(commit["added"]) == MODEL_FILES | {"README.md"}
    for name in MODEL_FILES:
        assert commit["added"][name] == (evaluated / name).read_bytes()
    card = ModelCard(commit["added"]["README.md"].decode(), ignore_metadata_errors=False)
    assert len(card.data.eval_results) == 4
    assert hub.validated  # the card's metadata went through the Hub's YAML check
    assert f"Bearer {TOKEN}" in hub.authorizations
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert TOKEN not in text
    assert all(TOKEN.encode() not in blob for blob in commit["added"].values())
    assert "published" in captured.out and "me/tiny-leapt" in captured.out


def test_an_unevaluated_checkpoint_says_so_instead_of_showing_results(evaluated, tmp_path, capsys):
    bare = copy_checkpoint(evaluated, tmp_path / "bare")
    _, text = dry_run(capsys, str(bare), "--repo_id", "me/bare")
    assert "Not evaluated" in text and "reports no scores" in text
    card = ModelCard(text, ignore_metadata_errors=False)
    assert card.data.eval_results is None and "model-index" not in text


@pytest.mark.parametrize("secret", [".env", "logs/.netrc", "token"])
def test_a_folder_holding_a_credential_is_refused_naming_the_file(
    evaluated,
    tmp_path,
    capsys,
    hub,
    monkeypatch,
    secret,
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    (folder / secret).parent.mkdir(parents=True, exist_ok=True)
    (folder / secret).write_text("WANDB_API_KEY=0123456789abcdef\n")
    assert leapt(["publish", str(folder), "--repo_id", "me/leaky"]) == 2
    err = capsys.readouterr().err
    assert f"{secret} looks like a credential file" in err
    assert not hub.created and not hub.commits  # refused before any request


def test_a_file_to_send_that_contains_the_token_is_refused(
    evaluated, tmp_path, capsys, hub, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "note": TOKEN}))
    assert leapt(["publish", str(folder), "--repo_id", "me/leaky"]) == 2
    captured = capsys.readouterr()
    assert "config.json contains your Hub token" in captured.err
    assert TOKEN not in captured.out + captured.err
    assert not hub.created and not hub.commits


def test_the_token_comes_from_the_environment_or_the_cached_login(
    evaluated, tmp_path, capsys, hub, monkeypatch
):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    token_file = tmp_path / "hf-home" / "token"
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(token_file))
    assert leapt(["publish", str(evaluated), "--repo_id", "me/x"]) == 2
    assert "export HF_TOKEN or run `hf auth login`" in capsys.readouterr().err
    assert not hub.created

    token_file.parent.mkdir()
    token_file.write_text(TOKEN)  # what `hf auth login` stores
    assert leapt(["publish", str(evaluated), "--repo_id", "me/x"]) == 0
    assert f"Bearer {TOKEN}" in hub.authorizations
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err


def test_results_measured_on_another_model_are_refused(evaluated, tmp_path, capsys):
    results = json.loads((evaluated / "eval" / "results.json").read_text())
    for entry in results["benchmarks"].values():
        for m in entry["methods"].values():
            m["model"] = "someone/else"
    other = tmp_path / "other-eval"
    other.mkdir()
    (other / "results.json").write_text(json.dumps(results))
    argv = [
        "publish",
        str(evaluated),
        "--repo_id",
        "me/x",
        "--eval_dir",
        str(other),
        "--dry_run",
        "true",
    ]
    assert leapt(argv) == 2
    assert "was measured on someone/else" in capsys.readouterr().err


def test_results_recorded_with_a_relative_model_path_are_matched_from_any_directory(
    evaluated, tmp_path, capsys, monkeypatch
):
    """`leapt eval --model runs/ckpt` records the path as typed, relative to where eval ran."""
    results = json.loads((evaluated / "eval" / "results.json").read_text())

    def publish_with_model(recorded: str) -> int:
        for entry in results["benchmarks"].values():
            for m in entry["methods"].values():
                m["model"] = recorded
        eval_dir = tmp_path / "relative-eval"
        eval_dir.mkdir(exist_ok=True)
        (eval_dir / "results.json").write_text(json.dumps(results))
        argv = ["publish", str(evaluated), "--repo_id", "me/x", "--eval_dir", str(eval_dir)]
        return leapt([*argv, "--dry_run", "true"])

    monkeypatch.chdir(tmp_path)  # not where eval ran: the relative path leads nowhere from here
    assert publish_with_model(f"{evaluated.parent.name}/{evaluated.name}") == 0
    assert "Pass@1" in capsys.readouterr().out
    assert publish_with_model(f"another-run/{evaluated.name}") == 2
    assert f"was measured on another-run/{evaluated.name}" in capsys.readouterr().err


def test_dataset_publish_sends_data_stats_and_a_card_with_filters_and_decontamination(
    tmp_path,
    capsys,
    hub,
    monkeypatch,
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    decon = [{"id": "d", "benchmark": "aime24", "benchmark_id": "aime-1", "ngram": "a b c"}]
    folder = shard_dir(tmp_path, "leap-ds", [trace("a", 2)], "0/1", decon)
    (folder / "traces").mkdir()
    (folder / "traces" / "raw.jsonl").write_text("{}\n")  # raw traces stay local

    files, text = dry_run(capsys, "--dataset", str(folder), "--repo_id", "me/leap-ds")
    assert files[0] == "stats.json" and all(f.startswith("data/") for f in files[1:])
    card = DatasetCard(text, ignore_metadata_errors=False)
    assert card.data.pretty_name == "leap-ds"
    assert "## Filters" in text and "## Decontamination" in text and "| d | aime24 |" in text

    assert leapt(["publish", "--dataset", str(folder), "--repo_id", "me/leap-ds"]) == 0
    (commit,) = hub.commits
    assert set(commit["added"]) == {*files, "README.md"}
    assert commit["added"]["README.md"].decode() == text
    assert TOKEN not in capsys.readouterr().out


def test_training_pushes_through_trl_with_the_leap_card(
    tiny_model_dir,
    sft_data,
    tmp_path,
    capsys,
    hub,
    monkeypatch,
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = tmp_path / "pushed"
    push = ["--push_to_hub", "true", "--hub_model_id", "me/tiny-train"]
    push += ["--save_strategy", "steps", "--save_steps", "1"]
    assert leapt(train_argv(tiny_model_dir, sft_data, out, *push)) == 0

    assert [c["repo_id"] for c in hub.created] == ["me/tiny-train"]
    (commit,) = hub.commits  # one push at the end, none per checkpoint
    sent = set(commit["added"])
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= sent
    assert not any(name.startswith("checkpoint-") for name in sent)
    card = commit["added"]["README.md"].decode()
    assert card == (out / "README.md").read_text()
    assert "## LeaP-T training" in card and "leapt infer --model me/tiny-train" in card
    assert "trl" in ModelCard(card).data.tags  # TRL's own card, extended
    from transformers import AutoTokenizer

    eos = json.loads(commit["added"]["generation_config.json"])["eos_token_id"]
    assert AutoTokenizer.from_pretrained(out).eos_token_id in (
        eos if isinstance(eos, list) else [eos]
    )
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err

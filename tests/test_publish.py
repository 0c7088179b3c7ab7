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

import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard, ModelCard, parse_eval_result_entries

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


EVAL_RESULTS = ".eval_results/aime24.yaml"


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
    # not training_args.bin, leapt_training.json, eval/, ...; the leaderboard entries beside the card
    assert set(files) == MODEL_FILES | {EVAL_RESULTS}
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
    assert set(commit["added"]) == MODEL_FILES | {"README.md", EVAL_RESULTS}
    for name in MODEL_FILES:
        assert commit["added"][name] == (evaluated / name).read_bytes()
    card = ModelCard(commit["added"]["README.md"].decode(), ignore_metadata_errors=False)
    assert len(card.data.eval_results) == 4
    entries = parse_eval_result_entries(yaml.safe_load(commit["added"][EVAL_RESULTS]))
    measured = json.loads((evaluated / "eval" / "results.json").read_text())["benchmarks"]
    methods = measured["aime24"]["methods"]
    assert [e.value for e in entries] == [
        round(100 * methods[m]["pass@1"], 2) for m in sorted(methods)
    ]
    for entry, method in zip(entries, sorted(methods), strict=True):
        assert (entry.dataset_id, entry.task_id) == ("HuggingFaceH4/aime_2024", "default")
        assert f"method {method}, N=2, T=8" in entry.notes
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


# -- secrets: everything sent or shown is scanned ------------------------------------------

URL_SECRET = "dsPassw0rdNeverShown"  # a dataset server's password, not the Hub token


def edit_record(folder: Path, **changes) -> None:
    record = json.loads((folder / "leapt_training.json").read_text())
    (folder / "leapt_training.json").write_text(json.dumps({**record, **changes}))


def test_cards_name_the_base_model_and_dataset_never_their_paths_or_credentials(
    evaluated, tiny_model_dir, tmp_path, capsys
):
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    dataset_url = f"https://me:{URL_SECRET}@data.example.org/leap/train.jsonl"
    edit_record(folder, base_model=str(tiny_model_dir), dataset=dataset_url)
    _, text = dry_run(capsys, str(folder), "--repo_id", "me/named")
    assert URL_SECRET not in text and str(tiny_model_dir) not in text
    assert str(tiny_model_dir.parent) not in text and str(tmp_path) not in text
    assert f"`{tiny_model_dir.name}`" in text
    assert "https://***@data.example.org/leap/train.jsonl" in text
    card = ModelCard(text, ignore_metadata_errors=False)
    assert card.data.base_model is None and card.data.datasets is None  # not Hub repos

    data_dir = tmp_path / "datasets" / "leap-sft"
    data_dir.mkdir(parents=True)
    edit_record(folder, dataset=str(data_dir))
    _, text = dry_run(capsys, str(folder), "--repo_id", "me/named")
    assert "`leap-sft`" in text and str(data_dir) not in text


@pytest.mark.parametrize("dry", [True, False])
def test_a_generated_card_holding_the_token_is_refused_before_it_is_shown_or_sent(
    evaluated, tmp_path, capsys, hub, monkeypatch, dry
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    record = json.loads((folder / "leapt_training.json").read_text())
    edit_record(folder, hyperparameters={**record["hyperparameters"], "run_name": TOKEN})
    argv = ["publish", str(folder), "--repo_id", "me/leaky", *(["--dry_run", "true"] * dry)]
    assert leapt(argv) == 2
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    assert "the generated README.md would contain your Hub token" in captured.err
    assert not hub.created and not hub.commits


def test_a_link_leaving_the_folder_is_refused(evaluated, tmp_path, capsys, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    outside = tmp_path / "elsewhere" / "tokenizer.json"
    outside.parent.mkdir()
    (folder / "tokenizer.json").rename(outside)
    (folder / "tokenizer.json").symlink_to(outside)
    assert leapt(["publish", str(folder), "--repo_id", "me/linked"]) == 2
    assert "tokenizer.json is a link to a file outside the folder" in capsys.readouterr().err
    assert not hub.created and not hub.commits

    inside = folder / "tokenizer.json"  # a link within the folder is fine
    inside.unlink()
    (folder / "tok" / "tokenizer.json").parent.mkdir()
    outside.rename(folder / "tok" / "tokenizer.json")
    inside.symlink_to(folder / "tok" / "tokenizer.json")
    assert leapt(["publish", str(folder), "--repo_id", "me/linked"]) == 0
    (commit,) = hub.commits
    assert commit["added"]["tokenizer.json"] == (folder / "tok" / "tokenizer.json").read_bytes()


def test_a_large_file_is_scanned_in_full_across_block_boundaries(
    evaluated, tmp_path, capsys, hub, monkeypatch
):
    from leapt.hub import SCAN_CHUNK

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    with (folder / "merges.txt").open("wb") as handle:  # 12 MiB, the token across the first block
        handle.write(b"#" * (SCAN_CHUNK - 7) + TOKEN.encode() + b"#" * (4 * 1024 * 1024))
    assert (folder / "merges.txt").stat().st_size > 10 * 1024 * 1024
    assert leapt(["publish", str(folder), "--repo_id", "me/big"]) == 2
    err = capsys.readouterr().err
    assert "merges.txt contains your Hub token" in err and TOKEN not in err
    assert not hub.created

    with (folder / "merges.txt").open("wb") as handle:  # a URL with a password, also cut
        url = f"https://me:{URL_SECRET}@git.example.org/x"
        handle.write(b"#" * (SCAN_CHUNK - 12) + url.encode() + b"\n")
    assert leapt(["publish", str(folder), "--repo_id", "me/big"]) == 2
    err = capsys.readouterr().err
    assert "merges.txt contains a URL with a user or password" in err and URL_SECRET not in err


@pytest.mark.parametrize(
    ("secret", "content"),
    [
        ("token.json", '{"token": "x"}'),
        ("hf_token", "x"),
        ("logs/wandb_token", "x"),
        (".git/config", f'[remote "origin"]\n\turl = https://me:{URL_SECRET}@hf.co/me/x\n'),
    ],
)
def test_more_credential_files_are_refused(
    evaluated, tmp_path, capsys, hub, monkeypatch, secret, content
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    (folder / secret).parent.mkdir(parents=True, exist_ok=True)
    (folder / secret).write_text(content)
    assert leapt(["publish", str(folder), "--repo_id", "me/leaky"]) == 2
    err = capsys.readouterr().err
    assert f"{secret} looks like a credential file" in err and URL_SECRET not in err
    assert not hub.created


def test_a_git_config_without_credentials_is_not_a_secret(evaluated, tmp_path, capsys):
    folder = copy_checkpoint(evaluated, tmp_path / "ckpt")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text('[remote "origin"]\n\turl = https://hf.co/me/x\n')
    files, _ = dry_run(capsys, str(folder), "--repo_id", "me/clean")
    assert ".git/config" not in files


# -- one upload_folder commit: allow-list sent, stale files deleted --------------------------


def test_a_republish_replaces_stale_weights_and_results_and_keeps_the_rest(
    evaluated, hub, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.repos[("model", "me/again")] = {
        "model-00001-of-00002.safetensors": b"old",
        "model-00002-of-00002.safetensors": b"old",
        ".eval_results/gpqa_diamond.yaml": b"[]",
        "notes.md": b"written on the Hub",
        ".gitattributes": b"*.safetensors filter=lfs",
    }
    assert leapt(["publish", str(evaluated), "--repo_id", "me/again"]) == 0
    (commit,) = hub.commits
    assert sorted(commit["deleted"]) == [
        ".eval_results/gpqa_diamond.yaml",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    assert set(hub.repos[("model", "me/again")]) == (
        MODEL_FILES | {"README.md", EVAL_RESULTS, "notes.md", ".gitattributes"}
    )


# -- details: an eval run's traces as a dataset -----------------------------------------------


def test_details_publish_one_row_per_path_with_a_card(evaluated, tmp_path, hub, monkeypatch):
    from inference.trace import read_traces

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = evaluated / "eval"
    argv = ["publish", "--details", str(run), "--repo_id", "me/details-tiny"]
    assert leapt(argv) == 0
    assert hub.created == [
        {"type": "dataset", "repo_id": "me/details-tiny", "visibility": "public"}
    ]
    (commit,) = hub.commits
    files = hub.repos[("dataset", "me/details-tiny")]
    assert set(files) == {
        "README.md",
        "data/aime24_independent.parquet",
        "data/aime24_leap.parquet",
    }
    card = DatasetCard(files["README.md"].decode(), ignore_metadata_errors=False)
    assert {c["config_name"] for c in card.data.configs} == {"aime24_independent", "aime24_leap"}
    for method in ("independent", "leap"):
        path = tmp_path / f"{method}.parquet"
        path.write_bytes(files[f"data/aime24_{method}.parquet"])
        rows = pq.read_table(path).to_pylist()
        traces = read_traces(run / "aime24" / method / "traces.jsonl")
        assert len(rows) == sum(len(t.paths) for t in traces) == 4  # 2 problems x 2 paths
        for row in rows:
            trace = next(t for t in traces if t.id == row["problem_id"])
            p = trace.paths[row["path_index"]]
            assert (row["problem"], row["gold"], row["method"]) == (
                trace.problem,
                trace.answer,
                method,
            )
            assert (row["text"], row["answer"], row["correct"]) == (
                p.text(),
                p.final_answer,
                p.correct,
            )
            settings = json.loads(row["settings"])
            assert (settings["n"], settings["T"], settings["method"]) == (2, 8, method)
            assert row["model"] == evaluated.name  # a name, not the local path
    blob = b"".join(files.values())
    assert str(evaluated).encode() not in blob and TOKEN.encode() not in blob


@pytest.mark.parametrize("content", ["nothing", "results only", "empty traces"])
def test_details_of_a_folder_without_eval_traces_is_refused_in_one_line(
    tmp_path, capsys, hub, monkeypatch, content
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = tmp_path / "run"
    run.mkdir()
    if content == "results only":
        (run / "results.json").write_text("{}")
    if content == "empty traces":
        (run / "aime24" / "leap").mkdir(parents=True)
        (run / "aime24" / "leap" / "traces.jsonl").write_text("")
    assert leapt(["publish", "--details", str(run), "--repo_id", "me/details-x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no `leapt eval` traces" in err[0] and str(run) in err[0]
    assert not hub.created and not hub.commits


def test_the_dataset_card_names_its_source_and_teacher_never_their_paths(tmp_path, capsys):
    from data_gen.card import render_card

    folder = shard_dir(tmp_path, "leap-ds", [trace("a", 2)], "0/1", [])
    stats = json.loads((folder / "stats.json").read_text())
    teacher = tmp_path / "models" / "SmolLM2-135M-Instruct"
    source = tmp_path / "problems" / "train.jsonl"
    stats |= {"teacher": str(teacher), "source": str(source)}
    (folder / "stats.json").write_text(json.dumps(stats))
    _, text = dry_run(capsys, "--dataset", str(folder), "--repo_id", "me/leap-ds")
    assert "**Teacher:** `SmolLM2-135M-Instruct`" in text
    assert "**Source problems:** `train.jsonl`" in text and str(tmp_path) not in text

    url = f"https://me:{URL_SECRET}@data.example.org/problems.jsonl"
    card = render_card({**stats, "source": url}, "leap-ds")
    assert "`https://***@data.example.org/problems.jsonl`" in card and URL_SECRET not in card
    (folder / "stats.json").write_text(json.dumps({**stats, "source": url}))
    assert (
        leapt(["publish", "--dataset", str(folder), "--repo_id", "me/x", "--dry_run", "true"]) == 2
    )
    err = capsys.readouterr().err  # stats.json itself is sent: refused
    assert "stats.json contains a URL with a user or password" in err and URL_SECRET not in err

"""A URL's user and password never reach a terminal, a log or a record; cards name, never path.

``leapt.redact`` is the one helper; these tests run it alone and through the
places that print or record a URL: the openai backend's unreachable-server
error as `leapt infer` prints it, log lines, and the training record.
"""

from __future__ import annotations

import logging

import pytest

from inference.backends import openai_api
from leapt.cli import main as leapt
from leapt.redact import has_url_credentials, is_hub_id, public_name, redact_urls, redact_values
from tests.processes import free_port
from tests.vllm_server import tiny_model_args

KEY = "sk-" + "redactTestKey0123456789"  # fake, split so scanners do not flag it


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"http://user:{KEY}@host:8000/v1", "http://***@host:8000/v1"),
        (f"https://{KEY}@host/data.jsonl", "https://***@host/data.jsonl"),
        (f"cannot reach https://u:p@ss:{KEY}@h/v1/models: refused", "https://***@h/v1/models"),
        (f"s3://AKIA:{KEY}@bucket/key and ftp://a:b@ftp.example", "s3://***@bucket/key"),
        ("http://host:8000/v1 (no credentials)", "http://host:8000/v1 (no credentials)"),
        ("write to me@example.com", "write to me@example.com"),
    ],
)
def test_redact_urls_masks_every_urls_credentials_and_nothing_else(text, shown):
    redacted = redact_urls(text)
    assert shown in redacted
    assert KEY not in redacted and not has_url_credentials(redacted)
    assert has_url_credentials(text) == (text != redacted)


def test_redact_values_walks_a_record():
    record = {"dataset": f"https://u:{KEY}@h/x", "args": [{"source": f"http://{KEY}@h"}], "n": 3}
    assert redact_values(record) == {
        "dataset": "https://***@h/x",
        "args": [{"source": "http://***@h"}],
        "n": 3,
    }


def test_public_name_shows_a_hub_id_a_folder_name_or_a_redacted_url(tmp_path, monkeypatch):
    folder = tmp_path / "runs" / "student-7b"
    folder.mkdir(parents=True)
    assert public_name("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == (
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    )
    assert public_name(str(folder)) == "student-7b"
    assert public_name(f"{folder}/") == "student-7b"
    assert public_name("/data/generate/never/existed") == "existed"
    monkeypatch.chdir(folder)
    assert public_name(".") == "student-7b" and public_name("..") == "runs"
    assert public_name(f"https://u:{KEY}@host/d.jsonl") == "https://***@host/d.jsonl"
    assert is_hub_id("org/name") and not is_hub_id(str(folder)) and not is_hub_id("https://h/x")
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("runs/student-7b")  # exists here: a path, not a Hub id


def test_unreachable_server_error_shows_the_url_without_its_credentials(tiny_model_dir):
    url = f"http://user:{KEY}@127.0.0.1:{free_port()}/v1"
    with pytest.raises(openai_api.ServerUnusableError) as err:
        openai_api.load(
            tiny_model_args(tiny_model_dir, "openai", api_base=url), str(tiny_model_dir)
        )
    assert KEY not in str(err.value)
    assert f"cannot reach http://***@127.0.0.1:{url.rsplit(':', 1)[1]}/models" in str(err.value)


def test_leapt_infer_prints_the_api_base_without_credentials(tiny_model_dir, tmp_path, capsys):
    url = f"http://user:{KEY}@127.0.0.1:{free_port()}/v1"
    argv = ["infer", "--model", str(tiny_model_dir), "--backend", "openai", "--api_base", url]
    argv += [
        "--source",
        "builtin:easy",
        "--n",
        "2",
        "--top_k",
        "1",
        "--output_dir",
        str(tmp_path / "out"),
    ]
    assert leapt(argv) == 2
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    (line,) = captured.err.strip().splitlines()[-1:]
    assert line.startswith("leapt infer: error:") and "http://***@127.0.0.1" in line


def test_log_lines_show_urls_without_credentials(capsys):
    from leapt import log

    log.setup("infer", ["inference"])
    logging.getLogger("inference.test").warning("retrying %s", f"http://u:{KEY}@h/v1")
    err = capsys.readouterr().err
    assert KEY not in err and "retrying http://***@h/v1" in err


@pytest.mark.parametrize(
    "text",
    [
        '{"https://":100,"me@":101}',  # a compact tokenizer vocabulary
        "see http://host/path, or mail me@example.org",
        "ftp://@host/x",
        "'http://a' '@b'",
    ],
)
def test_text_that_only_looks_like_a_url_with_credentials_is_left_alone(text):
    assert not has_url_credentials(text) and redact_urls(text) == text

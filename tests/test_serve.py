"""`leapt serve` driven by clients no one here wrote: the `openai` package, raw HTTP, lm-eval.

One server (tiny Qwen2, hf backend, an API key) serves the module; each test
sends real HTTP to it on 127.0.0.1 and reads the run folder it writes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest

from inference.trace import read_traces
from tests.processes import REPO, leapt_argv, leapt_env
from tests.served import TINY_SETTINGS, Server

pytestmark = pytest.mark.slow

KEY_ENV = "LEAPT_TEST_SERVE_KEY"
KEY = "sk-test-5f0c2e9a"
PROBLEM = "Tom has 3 apples and buys 4 more. How many apples does he have now?"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("served") / "run"
    srv = Server(
        tiny_model_dir,
        out,
        *TINY_SETTINGS,
        "--server_api_key_env",
        KEY_ENV,
        "--max_body_bytes",
        "1000000",
        **{KEY_ENV: KEY},
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


def model_id(client: openai.OpenAI, method: str = "leap") -> str:
    ids = [m.id for m in client.models.list().data]
    return next(i for i in ids if i.startswith(method + "-") and not i.startswith(method + "_"))


def served_traces(server: Server) -> list:
    path = server.output_dir / "traces.jsonl"
    return read_traces(path) if path.exists() else []


def served_trace(server: Server, trace_id: str):
    found = [t for t in served_traces(server) if t.id == trace_id]
    assert len(found) == 1, f"trace {trace_id} appears {len(found)} times"
    return found[0]


def test_openai_client_n4_gives_the_paths_leapt_infer_gives(server, client, tmp_path):
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"id": "apples", "problem": PROBLEM, "answer": "7"}) + "\n")
    infer_dir = tmp_path / "infer"
    subprocess.run(
        leapt_argv(
            "infer", "--model", str(server.model), "--source", str(source),
            "--output_dir", str(infer_dir), "--seed", "3", *TINY_SETTINGS,
        ),
        cwd=REPO, env=leapt_env(), check=True, capture_output=True,
    )  # fmt: skip
    [offline] = read_traces(infer_dir / "traces.jsonl")

    response = client.chat.completions.create(
        model=model_id(client),
        messages=[{"role": "user", "content": PROBLEM}],
        n=4,
        seed=3,
        max_tokens=24,
        temperature=0.6,
        top_p=0.95,
        extra_body={
            "top_k": 40,
            "leapt": {"problem_id": "apples", "T": 8, "top_k": 2, "summary_max_tokens": 8},
        },
    )
    assert len(response.choices) == 4
    trace = served_trace(server, response.model_extra["leapt"]["trace_id"])
    assert response.id == "chatcmpl-" + trace.id
    # token for token: the same segments (prompt, model, peer) and the same token counts
    assert [p.segments for p in trace.paths] == [p.segments for p in offline.paths]
    assert [p.generated_tokens for p in trace.paths] == [p.generated_tokens for p in offline.paths]
    assert trace.routing == offline.routing
    assert len({p.completion() for p in trace.paths}) == 4  # four distinct samples
    for choice, path in zip(response.choices, offline.paths, strict=True):
        reasoning = choice.message.model_extra["reasoning_content"]
        assert reasoning == path.completion()  # the tiny model writes no think-end tag
        assert "<summarize>" in reasoning and "<comment>" in reasoning
        expected = "" if path.final_answer is None else f"\\boxed{{{path.final_answer}}}"
        assert choice.message.content == expected
        assert choice.finish_reason == ("stop" if path.finish in ("eos", "think_end") else "length")
    generated = sum(p.generated_tokens for p in offline.paths)
    assert response.usage.completion_tokens == generated
    assert response.usage.prompt_tokens > 4 * len(PROBLEM) // 8  # every round's context counted
    assert response.usage.total_tokens == generated + response.usage.prompt_tokens
    log = server.output()
    assert PROBLEM not in log and "<summarize>" not in log and KEY not in log


def test_n1_votes_streams_and_the_folder_is_a_run_leapt_view_and_report_read(
    server, client, tmp_path
):
    leap = model_id(client)
    voted = client.chat.completions.create(
        model=leap, messages=[{"role": "user", "content": "Compute 2 + 5."}], seed=1
    )
    extension = voted.model_extra["leapt"]
    assert len(voted.choices) == 1 and extension["paths"] == 4
    trace = served_trace(server, extension["trace_id"])
    assert trace.config["served"] is True and trace.config["n"] == 4
    every = client.chat.completions.create(
        model=leap,
        messages=[{"role": "user", "content": "Compute 2 + 5."}],
        seed=1,
        extra_body={"leapt": {"n1": "all"}},
    )
    assert len(every.choices) == 4
    stream = client.chat.completions.create(
        model=model_id(client, "independent"),
        messages=[{"role": "user", "content": "Compute 2 + 5."}],
        n=2,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    contents = {c.choices[0].index: c.choices[0].delta.content for c in chunks if c.choices}
    assert set(contents) == {0, 1}
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0
    completion = client.completions.create(model=leap, prompt="Compute 2 + 5.", n=4, seed=1)
    assert len(completion.choices) == 4 and completion.id.startswith("cmpl-")

    env = leapt_env()
    for command in (["view", str(server.output_dir)], ["report", str(server.output_dir)]):
        done = subprocess.run(
            leapt_argv(*command), cwd=REPO, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert (server.output_dir / "results.json").is_file()
    assert list(server.output_dir.glob("*.html"))


BAD_REQUESTS = [
    ({"model": "beam-x", "messages": [{"role": "user", "content": "1+1"}]}, 400, "prefix"),
    ({"model": "LEAP", "messages": [{"role": "user", "content": "1+1"}], "n": 0}, 400, "'n'"),
    (
        {"model": "LEAP", "messages": [{"role": "user", "content": "1+1"}], "leapt": {"top_k": 4}},
        400,
        "'leapt.top_k' (4) must be smaller than 'n' (4)",
    ),
    (
        {"model": "LEAP", "messages": [{"role": "user", "content": "1+1"}], "leapt": {"T": "x"}},
        400,
        "'leapt.T' must be int",
    ),
    (
        {"model": "LEAP", "messages": [{"role": "user", "content": "1+1"}], "leapt": {"k": 1}},
        400,
        "unknown field 'leapt.k'",
    ),
    (
        {"model": "LEAP", "messages": [{"role": "user", "content": "1+1"}], "temperature": -1},
        400,
        "'temperature' must be >= 0",
    ),
    (
        {
            "model": "LEAP",
            "messages": [{"role": "user", "content": "1"}, {"role": "system", "content": "be nice"}],
        },
        400,
        "'messages' must hold exactly one user message",
    ),
    ({"model": "LEAP", "messages": []}, 400, "'messages'"),
    ({"model": "LEAP", "messages": [{"role": "user", "content": "1"}], "logprobs": True}, 400, "'logprobs'"),
    ({"model": "leap-other-model", "messages": [{"role": "user", "content": "1"}]}, 400, "this server runs"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "says"), BAD_REQUESTS)
def test_a_bad_request_is_refused_naming_the_field_and_nothing_runs(
    server, client, body, status, says
):
    before = served_traces(server)
    body = {**body, "model": body["model"].replace("LEAP", model_id(client))}
    reply = httpx.post(
        server.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]["message"]
    assert says in message and "\n" not in message
    assert served_traces(server) == before
    assert httpx.get(server.url + "/health").json()["pending"] == 0


def test_oversized_bodies_bad_json_and_wrong_keys_are_4xx_and_the_server_keeps_serving(
    server, client
):
    url = server.url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    huge = json.dumps(
        {"model": model_id(client), "messages": [{"role": "user", "content": "x" * 10_000_000}]}
    )
    cases = [
        (httpx.post(url, content=huge, headers=auth, timeout=60), 413, "exceeds 1000000 bytes"),
        (httpx.post(url, content=b'{"model": "lea', headers=auth), 400, "not valid JSON"),
        (httpx.post(url, content=b"[1, 2]", headers=auth), 400, "JSON object"),
        (httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}), 401, "API key"),
        (httpx.post(url, json={}), 401, "API key"),
        (httpx.get(server.url + "/v1/models"), 401, "API key"),
    ]
    for reply, status, says in cases:
        assert reply.status_code == status, reply.text
        assert says in reply.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert KEY not in server.output()
    ok = client.chat.completions.create(
        model=model_id(client), messages=[{"role": "user", "content": "Compute 1 + 1."}], n=4
    )
    assert len(ok.choices) == 4


def test_lm_eval_local_chat_completions_scores_a_task_through_the_server(server, client, tmp_path):
    """lm-evaluation-harness, as a user would run it, against the server: it ends with a score."""
    before = len(served_traces(server))
    model_args = ",".join(
        [
            f"model={model_id(client)}",
            f"base_url={server.url}/v1/chat/completions",
            "num_concurrent=4",
            "max_retries=1",
            "tokenizer_backend=None",
            "tokenized_requests=False",
        ]
    )
    done = subprocess.run(
        [
            sys.executable, "-m", "lm_eval", "--model", "local-chat-completions",
            "--model_args", model_args, "--tasks", "leapt_tiny_additions",
            "--include_path", str(REPO / "tests" / "data" / "lm_eval_task"),
            "--limit", "4", "--apply_chat_template", "--output_path", str(tmp_path / "lm_eval"),
        ],
        cwd=REPO,
        env=leapt_env(OPENAI_API_KEY=KEY, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [results_file] = (tmp_path / "lm_eval").rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]["leapt_tiny_additions"]
    score = results["exact_match,boxed"]
    assert 0.0 <= score <= 1.0
    served = served_traces(server)[before:]
    assert sorted(t.problem for t in served) == sorted(
        f"Compute {a} + {b}." for a, b in [(2, 5), (3, 4), (10, 6), (7, 8)]
    )
    assert all(len(t.paths) == 4 for t in served)  # n=1 from the harness: four paths, voted

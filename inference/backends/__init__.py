"""Generation backends behind one interface (see ``base.py``), loaded lazily.

Each backend module exposes ``load(model_args, model_path) -> Backend``; only
the chosen one is imported, so ``leapt infer --backend hf`` never imports vLLM.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from inference.args import ModelArguments
from inference.backends.base import Backend

BACKEND_MODULES = {
    "hf": "inference.backends.hf",
    "vllm": "inference.backends.vllm_offline",
    "openai": "inference.backends.openai_api",
}


def load_backend(model_args: ModelArguments) -> Backend:
    """Resolve the model (the embedded default is converted once) and load its backend."""
    from inference.models import resolve_model

    model_path = resolve_model(model_args)
    module = importlib.import_module(BACKEND_MODULES[model_args.backend])
    return module.load(model_args, model_path)


#: CPU flags that make bf16 matmuls fast (AVX-512 BF16, AMX); without them bf16 is emulated
_FAST_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_dtype(requested: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``dtype: auto`` on a CPU without fast bf16 means float32, else ``requested`` unchanged.

    A bf16 checkpoint (and vLLM's CPU default) would otherwise run bf16 by
    emulation: on the 2-core AVX2 machine the demo was measured on, vLLM in
    bf16 did not finish the demo in 500 s; in float32 it did.  With a GPU,
    "auto" is left to the backend.
    """
    if requested != "auto" or has_cuda():
        return requested
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return requested
    return requested if flags & _FAST_BF16_FLAGS else "float32"


def has_cuda() -> bool:
    """Whether torch sees a GPU (False when torch is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()

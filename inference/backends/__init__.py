"""Generation backends behind one interface (see ``base.py``), loaded lazily.

Each backend module exposes ``load(model_args, model_path) -> Backend``; only
the chosen one is imported, so ``leapt infer --backend hf`` never imports vLLM.
"""

from __future__ import annotations

import importlib

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

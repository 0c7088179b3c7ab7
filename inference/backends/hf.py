"""transformers ``generate`` on CPU: the embedded default and the fast tests.

Requests that share a token cap and stop strings are batched (left padding,
at most ``hf_batch_size`` rows).  Each row samples with its own generator
seeded by its request's seed (see :class:`_RowSampler`), so a path's tokens
depend on its seed, not on which other requests shared its batch: a fixed run
seed replays a run, and a resumed or sharded run draws the same samples as
an uninterrupted one, while the N paths of a problem (distinct seeds) differ.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from transformers import LogitsProcessor, LogitsProcessorList

from inference.args import ModelArguments
from inference.backends.base import GenerationRequest, GenerationResult, SamplingSettings

_DTYPES = {"float32", "bfloat16", "float16"}


class HFBackend:
    """A causal LM and its tokenizer, continuing token ids with ``model.generate``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_name: str,
        batch_size: int = 16,
        max_model_len: int | None = None,
    ):
        self.model = model
        #: context limit the engine keeps every path within (default: the model's positions)
        self.max_model_len = max_model_len or getattr(model.config, "max_position_embeddings", None)
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.batch_size = batch_size
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids, default=0)

    def generate(
        self, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            groups[(req.max_tokens, tuple(req.stop))].append(i)
        for (max_tokens, stop), indices in groups.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                outs = self._generate_batch(
                    [requests[i] for i in chunk], max_tokens, list(stop), sampling
                )
                for i, out in zip(chunk, outs, strict=True):
                    results[i] = out
        return results  # type: ignore[return-value]

    def _generate_batch(
        self,
        batch: list[GenerationRequest],
        max_tokens: int,
        stop: list[str],
        sampling: SamplingSettings,
    ) -> list[GenerationResult]:
        import torch

        width = max(len(r.token_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, req in enumerate(batch):
            ids[row, width - len(req.token_ids) :] = torch.tensor(req.token_ids)
            mask[row, width - len(req.token_ids) :] = 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids) or None,
            # greedy over the sampler's one-hot scores = the sampler's per-row draw
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        if sampling.temperature > 0:
            sampler = _RowSampler([r.seed for r in batch], sampling)
            kwargs["logits_processor"] = LogitsProcessorList([sampler])
        if stop:
            kwargs.update(stop_strings=stop, tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        return [self._result(row[width:].tolist(), max_tokens, stop) for row in out]

    def _result(self, new: list[int], max_tokens: int, stop: list[str]) -> GenerationResult:
        """Cut one row's new tokens at EOS (excluded) or its first stop string (included)."""
        eos_at = next((i for i, t in enumerate(new) if t in self.eos_ids), None)
        tokens = new if eos_at is None else new[:eos_at]
        text = self._decode(tokens)
        hits = [(text.find(s), s) for s in stop if s in text]
        if hits:
            _, first = min(hits)
            end = self._prefix_containing(tokens, first)
            tokens = tokens[:end]
            return GenerationResult(tokens, self._decode(tokens), "stop", first)
        if eos_at is not None:
            return GenerationResult(tokens, text, "eos")
        if len(tokens) < max_tokens:
            # a row that stopped early without EOS or stop string: trailing pads
            tokens = _strip_trailing(tokens, self.pad_id)
            text = self._decode(tokens)
        return GenerationResult(tokens, text, "length")

    def _prefix_containing(self, tokens: list[int], stop: str) -> int:
        """Fewest leading tokens whose text contains ``stop`` (binary search)."""
        lo, hi = 1, len(tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            if stop in self._decode(tokens[:mid]):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)

    def close(self) -> None:
        self.model = None


class _RowSampler(LogitsProcessor):
    """Temperature / top-k / top-p / min-p sampling with one torch generator per row.

    ``generate`` samples all rows from torch's global generator, which ties a
    row's draw to the rest of its batch.  This processor draws each row's
    token itself and returns scores that are ``-inf`` everywhere else, so
    greedy decoding emits exactly that token.
    """

    def __init__(self, seeds: list[int], sampling: SamplingSettings):
        import torch

        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.sampling = sampling

    def __call__(self, input_ids, scores):
        import torch

        s = self.sampling
        logits = scores.float() / s.temperature
        if s.top_k > 0 and s.top_k < logits.shape[-1]:
            kth = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if s.min_p > 0:
            floor = s.min_p * probs.max(dim=-1, keepdim=True).values
            probs = probs.masked_fill(probs < floor, 0.0)
        if s.top_p < 1.0:
            ordered, order = torch.sort(probs, dim=-1, descending=True)
            outside = ordered.cumsum(dim=-1) - ordered > s.top_p  # keeps at least the top token
            probs = torch.zeros_like(probs).scatter(1, order, ordered.masked_fill(outside, 0.0))
        choice = torch.stack(
            [
                torch.multinomial(row, 1, generator=g)[0]
                for row, g in zip(probs, self.generators, strict=True)
            ]
        )
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(choice)), choice] = 0.0
        return out


def _strip_trailing(tokens: list[int], pad: int) -> list[int]:
    end = len(tokens)
    while end and tokens[end - 1] == pad:
        end -= 1
    return tokens[:end]


def load(model_args: ModelArguments, model_path: str) -> HFBackend:
    """Load ``model_path`` for CPU generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=model_args.trust_remote_code
    )
    dtype = getattr(torch, model_args.dtype) if model_args.dtype in _DTYPES else "auto"
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=dtype, trust_remote_code=model_args.trust_remote_code
    )
    model.eval()
    return HFBackend(
        model,
        tokenizer,
        model_args.model,
        batch_size=model_args.hf_batch_size,
        max_model_len=model_args.max_model_len,
    )

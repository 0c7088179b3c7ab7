"""transformers on CPU: the fast tests' backend, with continuous batching and KV reuse.

Why a decode loop of our own instead of ``model.generate``:

* **Continuous batching.**  Up to ``hf_batch_size`` rows decode together; a
  row leaves the batch the step it ends and waiting rows join between steps,
  so ``collect`` can hand back a problem's round the moment its last row ends
  (the engine then submits that problem's next round) instead of when the
  slowest row of a fixed batch ends.
* **KV reuse across rounds.**  A LeaP path is continued round after round;
  recomputing its whole context each time cost far more than the tokens
  generated.  When a row ends, its keys/values are kept (bounded LRU, see
  :class:`_PrefixStore`); a later request whose ids start with those tokens
  only prefills the new suffix (engine text + peer summaries).
* **Cheap stop strings.**  Each step decodes only a short tail of a row's new
  tokens to look for stop strings; the full text is decoded once per result.
* **Per-row seeded sampling.**  Each row draws with its own generator seeded
  by its request's seed (see :func:`sample_rows`), so a path's tokens depend
  on its seed, not on which other rows shared its batch: a fixed run seed
  replays a run, and a resumed or sharded run draws what an uninterrupted one
  draws, while the N paths of a problem (distinct seeds) differ.

Rows of different lengths share one padded cache: each row's keys/values sit
right-aligned, padding and the gap between a reused prefix and its new suffix
are masked out, and position ids are passed explicitly per row.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from inference.args import ModelArguments
from inference.backends.base import (
    GenerationRequest,
    GenerationResult,
    GroupedBackend,
    SamplingSettings,
    StopReason,
)

_DTYPES = {"float32", "bfloat16", "float16"}
#: memory kept for reusable keys/values of ended rows (least recently stored dropped first)
KV_STORE_BYTES = 1 << 30
#: extra tokens decoded around a stop string (a token may carry several characters or none)
_STOP_MARGIN = 4


@dataclass
class _Row:
    """One request being decoded."""

    key: Hashable
    slot: int
    request: GenerationRequest
    sampling: SamplingSettings
    generator: Any
    #: next position id to feed (= tokens the cache holds for this row, real ones)
    position: int = 0
    new: list[int] = field(default_factory=list)
    result: GenerationResult | None = None


class HFBackend(GroupedBackend):
    """A causal LM and its tokenizer, continuing token ids with a batched decode loop."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_name: str,
        batch_size: int = 16,
        max_model_len: int | None = None,
        kv_reuse: bool = True,
    ):
        super().__init__()
        use_gqa_sdpa(model)
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
        self.store = _PrefixStore(KV_STORE_BYTES if kv_reuse else 0)
        self.queue: deque[_Row] = deque()
        self.rows: list[_Row] = []
        self.cache: Any = None  # DynamicCache of the batch: keys/values [rows, heads, width, dim]
        self.mask: Any = None  # [rows, width], 1 where a cache column holds a real token

    # -- Backend / Submitter ---------------------------------------------------

    def _start(
        self, key: Hashable, slot: int, request: GenerationRequest, sampling: SamplingSettings
    ) -> None:
        import torch

        generator = torch.Generator().manual_seed(request.seed)
        self.queue.append(_Row(key, slot, request, sampling, generator))

    def _wait(self) -> None:
        """Admit waiting rows while the batch has room, else decode one step."""
        if self.queue and len(self.rows) < self.batch_size:
            self._admit()
        else:
            self._step()

    def close(self) -> None:
        self.model = None
        self.cache, self.rows, self.mask = None, [], None
        self.store = _PrefixStore(0)

    # -- decoding --------------------------------------------------------------

    def _admit(self) -> None:
        """Prefill waiting rows (reusing stored prefixes) and merge them into the batch."""
        import torch

        joining = [
            self.queue.popleft()
            for _ in range(min(len(self.queue), self.batch_size - len(self.rows)))
        ]
        reused = [self.store.take(row.request.token_ids) for row in joining]
        cached = [0 if kv is None else kv[0][0].shape[1] for kv in reused]
        suffixes = [row.request.token_ids[c:] for row, c in zip(joining, cached, strict=True)]
        width_c, width_s = max(cached), max(map(len, suffixes))
        self.counts.cached += sum(cached)
        self.counts.prefilled += sum(map(len, suffixes))
        ids = torch.full((len(joining), width_s), self.pad_id, dtype=torch.long)
        positions = torch.zeros((len(joining), width_s), dtype=torch.long)
        mask = torch.zeros((len(joining), width_c + width_s), dtype=torch.long)
        for i, (c, suffix) in enumerate(zip(cached, suffixes, strict=True)):
            ids[i, width_s - len(suffix) :] = torch.tensor(suffix)
            positions[i, width_s - len(suffix) :] = torch.arange(c, c + len(suffix))
            mask[i, width_c - c : width_c] = 1
            mask[i, width_c + width_s - len(suffix) :] = 1
        cache = self._new_cache()
        if width_c:
            for layer_index, layer in enumerate(cache.layers):
                rows = [
                    kv and (kv[layer_index][0][None], kv[layer_index][1][None]) for kv in reused
                ]
                _place(layer, rows, width_c, room=width_s + _SPARE_COLUMNS)
        logits = self._forward(ids, positions, mask, cache)
        for row in joining:
            row.position = len(row.request.token_ids)
        self._merge(joining, cache, mask)
        self._advance(joining, logits)

    def _step(self) -> None:
        """One decode step for every row in the batch."""
        import torch

        ids = torch.tensor([[row.new[-1]] for row in self.rows])
        positions = torch.tensor([[row.position] for row in self.rows])
        self.mask = torch.cat([self.mask, torch.ones((len(self.rows), 1), dtype=torch.long)], 1)
        logits = self._forward(ids, positions, self.mask, self.cache)
        for row in self.rows:
            row.position += 1
        self._advance(list(self.rows), logits)

    def _new_cache(self) -> Any:
        """A DynamicCache whose full-attention layers grow in place (:class:`_BufferedLayer`)."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.model.config)
        cache.layers = [
            _buffered_layer() if type(layer) is DynamicLayer else layer for layer in cache.layers
        ]
        return cache

    def _forward(self, ids, positions, mask, cache) -> Any:
        """Run the model on ``ids`` (cache extended in place); logits of each row's last token."""
        import torch

        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        return out.logits[:, -1, :]

    def _merge(self, joining: list[_Row], cache: Any, mask: Any) -> None:
        """Append prefilled rows to the batch, left-padding the narrower side's columns."""
        import torch

        if not self.rows:
            self.rows, self.cache, self.mask = joining, cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            _place(old, [(old.keys, old.values), (new.keys, new.values)], width, _SPARE_COLUMNS)
        self.mask = torch.cat([_pad_mask(self.mask, width), _pad_mask(mask, width)])
        self.rows = self.rows + joining

    def _advance(self, rows: list[_Row], logits: Any) -> None:
        """Sample one token per row (``rows`` align with ``logits``); drop rows that ended."""
        import torch

        ended = set()
        self.counts.decoded += len(rows)
        for row, token in zip(rows, sample_rows(logits, rows), strict=True):
            row.new.append(token)
            row.result = self._check(row)
            if row.result is not None:
                self._finish(row.key, row.slot, row.result)
                ended.add(id(row))
        if not ended:
            return
        keep = []
        for i, row in enumerate(self.rows):
            if id(row) in ended:
                self._keep_prefix(i)
            else:
                keep.append(i)
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        mask = self.mask[torch.tensor(keep)]
        first = int(mask.any(dim=0).nonzero()[0])  # columns only ended rows used go too
        self.mask = mask[:, first:]
        for layer in self.cache.layers:
            _keep_rows(layer, keep, first)
        self.rows = [self.rows[i] for i in keep]

    def _keep_prefix(self, i: int) -> None:
        """Store the ended row's keys/values: its context and all but its last sampled token."""
        if not self.store.capacity:
            return
        row = self.rows[i]
        real = self.mask[i].bool()
        kv = [(layer.keys[i][:, real], layer.values[i][:, real]) for layer in self.cache.layers]
        self.store.put(list(row.request.token_ids) + row.new[:-1], kv)

    def _check(self, row: _Row) -> GenerationResult | None:
        """The row's result once it hit EOS, a stop string or its token cap; else None."""
        new = row.new
        if new[-1] in self.eos_ids:
            return self._result(new[:-1], "eos")
        stops = row.request.stop
        if stops:
            tail = self._decode(new[-(max(map(len, stops)) + _STOP_MARGIN) :])
            hits = [(tail.find(s), s) for s in stops if s in tail]
            if hits:
                return self._result(list(new), "stop", min(hits)[1])
        if len(new) >= row.request.max_tokens:
            return self._result(list(new), "length")
        return None

    def _result(self, tokens: list[int], reason: StopReason, stop: str | None = None):
        return GenerationResult(tokens, self._decode(tokens), reason, stop)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)


def sample_rows(logits, rows: list[_Row]) -> list[int]:
    """One token per row: greedy at temperature 0, else drawn with the row's own generator.

    Temperature, top-k, min-p and top-p apply in that order; rows are grouped by
    their sampling settings so the filtering runs batched.  With top-k the draw
    is made among the k best tokens only (sorting and sampling 40 entries, not
    the whole vocabulary, which cost more than a decode step's sampling should).
    """
    import torch

    chosen = [0] * len(rows)
    by_settings: dict[SamplingSettings, list[int]] = {}
    for i, row in enumerate(rows):
        by_settings.setdefault(row.sampling, []).append(i)
    for s, idx in by_settings.items():
        scores = logits[idx].float()
        if s.temperature <= 0:
            for i, token in zip(idx, scores.argmax(dim=-1).tolist(), strict=True):
                chosen[i] = token
            continue
        if 0 < s.top_k < scores.shape[-1]:
            scores, vocab = torch.topk(scores, s.top_k, dim=-1)  # sorted, best first
        else:
            scores, vocab = torch.sort(scores, dim=-1, descending=True)
        probs = torch.softmax(scores / s.temperature, dim=-1)
        if s.min_p > 0:
            probs = probs.masked_fill(probs < s.min_p * probs[:, :1], 0.0)
        if s.top_p < 1.0:
            outside = probs.cumsum(dim=-1) - probs > s.top_p  # keeps at least the top token
            probs = probs.masked_fill(outside, 0.0)
        for i, row_probs, row_vocab in zip(idx, probs, vocab, strict=True):
            pick = torch.multinomial(row_probs, 1, generator=rows[i].generator)
            chosen[i] = int(row_vocab[pick])
    return chosen


class _PrefixStore:
    """Keys/values of ended rows, by the token ids they cover; LRU within ``capacity`` bytes."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.entries: OrderedDict[int, tuple[list[int], list[tuple[Any, Any]], int]] = OrderedDict()
        self.size = 0
        self.counter = 0

    def put(self, tokens: list[int], kv: list[tuple[Any, Any]]) -> None:
        nbytes = sum(k.numel() * k.element_size() * 2 for k, _ in kv)
        if nbytes > self.capacity:
            return
        self.counter += 1
        self.entries[self.counter] = (tokens, kv, nbytes)
        self.size += nbytes
        while self.size > self.capacity:
            _, (_, _, dropped) = self.entries.popitem(last=False)
            self.size -= dropped

    def take(self, tokens: list[int]) -> list[tuple[Any, Any]] | None:
        """Remove and return the longest entry that is a prefix of ``tokens`` (at most all but one).

        Taken, not copied: the row that reuses it stores a longer entry when it ends.
        """
        best, best_len = None, 0
        for key, (covered, _, _) in self.entries.items():
            n = len(covered)
            if best_len < n and n <= len(tokens) and tokens[:n] == covered:
                best, best_len = key, n
        if best is None:
            return None
        _, kv, nbytes = self.entries.pop(best)
        self.size -= nbytes
        usable = min(best_len, len(tokens) - 1)
        if usable < 1:
            return None
        return [(k[:, :usable], v[:, :usable]) for k, v in kv]


#: free cache columns a batch keeps past its tokens, so decode steps write keys/values in place
_SPARE_COLUMNS = 64


@functools.cache
def _buffered_layer_class() -> type:
    """A DynamicLayer over a buffer with spare columns (built lazily: transformers loads late).

    DynamicLayer appends each step's keys/values with ``torch.cat``: a fresh copy of
    the whole batch cache, per layer, per decoded token.  Profiled on SmolLM2-135M
    with 16 rows of ~800 tokens, those copies cost about as much as the model itself.
    Here a step writes into spare columns; only when they run out is the buffer
    reallocated, and rows that end are compacted in place.  ``keys``/``values`` are
    views of the live rows and columns, so the model reads them as usual.
    """
    from transformers.cache_utils import DynamicLayer

    class BufferedLayer(DynamicLayer):
        def hold(self, keys: Any, values: Any, width: int) -> None:
            """Take ``keys``/``values`` [rows, heads, capacity, dim] holding ``width`` columns."""
            if not self.is_initialized:
                self.lazy_initialization(keys, values)
            self.buffers, self.start, self.end = (keys, values), 0, width
            self._view(keys.shape[0])

        def _view(self, rows: int) -> None:
            keys, values = self.buffers
            self.keys = keys[:rows, :, self.start : self.end]
            self.values = values[:rows, :, self.start : self.end]

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any):
            """Append the step's keys/values in place (reallocating when the spare runs out)."""
            added = key_states.shape[2]
            if not self.is_initialized:
                _place(self, [(key_states, value_states)], added, _SPARE_COLUMNS)
            elif self.end + added > self.buffers[0].shape[2]:
                _place(
                    self, [(self.keys, self.values)], self.end - self.start, added + _SPARE_COLUMNS
                )
                return self.update(key_states, value_states)
            else:
                for buffer, new in zip(self.buffers, (key_states, value_states), strict=True):
                    buffer[: new.shape[0], :, self.end : self.end + added] = new
                self.end += added
                self._view(key_states.shape[0])
            return self.keys, self.values

        def keep_rows(self, keep: list[int], first: int) -> None:
            """Keep rows ``keep`` (ascending) from column ``first`` on, moving them up in place."""
            import torch

            with torch.inference_mode():  # the buffers may be inference tensors (model outputs)
                for buffer in self.buffers:
                    for j, i in enumerate(keep):
                        if i != j:
                            buffer[j, :, self.start : self.end] = buffer[
                                i, :, self.start : self.end
                            ]
            self.start += first
            self._view(len(keep))

    return BufferedLayer


def _buffered_layer() -> Any:
    return _buffered_layer_class()()


def _place(layer: Any, blocks: list[tuple[Any, Any] | None], width: int, room: int) -> None:
    """Fill ``layer`` with ``blocks`` of rows stacked, each right-aligned to ``width`` columns.

    A block is (keys, values) of shape [rows, heads, columns, dim], or None for one
    row with nothing cached; uncovered columns are zero (masked out, but finite).
    A buffered layer gets ``room`` spare columns after them.
    """
    ref = next(block for block in blocks if block is not None)[0]
    rows = sum(1 if block is None else block[0].shape[0] for block in blocks)
    buffered = hasattr(layer, "hold")
    shape = (rows, ref.shape[1], width + (room if buffered else 0), ref.shape[3])
    keys, values = ref.new_zeros(shape), ref.new_zeros(shape)
    row = 0
    for block in blocks:
        count = 1 if block is None else block[0].shape[0]
        if block is not None:
            columns = block[0].shape[2]
            keys[row : row + count, :, width - columns : width] = block[0]
            values[row : row + count, :, width - columns : width] = block[1]
        row += count
    if buffered:
        layer.hold(keys, values, width)
        return
    if not layer.is_initialized:
        layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values


def _keep_rows(layer: Any, keep: list[int], first: int) -> None:
    """Drop the rows of ``layer`` not in ``keep`` and its columns before ``first``."""
    if hasattr(layer, "keep_rows"):
        layer.keep_rows(keep, first)
        return
    import torch

    select = torch.tensor(keep)
    layer.keys, layer.values = layer.keys[select, :, first:], layer.values[select, :, first:]


def _pad_mask(mask, width: int):
    """Zero-pad a [rows, columns] mask on the left to ``width`` columns."""
    import torch

    missing = width - mask.shape[1]
    if missing <= 0:
        return mask
    return torch.cat([mask.new_zeros((mask.shape[0], missing)), mask], dim=1)


#: the attention the backend registers with transformers (sdpa without repeated key/value heads)
GQA_SDPA = "leapt_gqa_sdpa"


def gqa_sdpa_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' sdpa attention, but grouped-query heads are not copied out first.

    With an attention mask (always, for padded batches) transformers repeats
    each shared key/value head for every query head it serves before calling
    sdpa on the CPU: three times the batch cache in fresh memory per layer per
    step for SmolLM2 (9 query heads, 3 key/value heads).  torch's sdpa takes
    the shared heads as they are with ``enable_gqa``.  Without a mask (a prefill
    with no padding) attention is causal, as in transformers' own sdpa.
    """
    import torch

    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)

    out = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
        is_causal=bool(query.shape[2] > 1 and attention_mask is None and causal),
        enable_gqa=query.shape[1] != key.shape[1],
    )
    return out.transpose(1, 2).contiguous(), None


def use_gqa_sdpa(model: Any) -> None:
    """Switch a model on transformers' sdpa to :func:`gqa_sdpa_attention` (others keep theirs)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return
    AttentionInterface.register(GQA_SDPA, gqa_sdpa_attention)
    AttentionMaskInterface.register(GQA_SDPA, sdpa_mask)
    model.set_attn_implementation(GQA_SDPA)


def load(model_args: ModelArguments, model_path: str) -> HFBackend:
    """Load ``model_path`` for CPU generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inference.backends import cpu_dtype

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=model_args.trust_remote_code
    )
    name = cpu_dtype(model_args.dtype)
    dtype = getattr(torch, name) if name in _DTYPES else "auto"
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

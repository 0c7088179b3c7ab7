"""A tiny real model that opens LeaP summaries by itself, for `leap_t` on real backends.

LeaP-T models write ``<summarize>`` on their own; a random tiny model never
does.  This one is built to: its transformer blocks add nothing (attention
and MLP output projections are zero), so the next token depends only on the
last one, and the embeddings and LM head spell out a fixed cycle::

    any text -> STEP -> <summarize> -> NOTE -> </summarize> -> STEP -> ...

The tags are added to the tiny tokenizer as single (non-special) tokens, so
every backend decodes them as text and honours them as stop strings.  The
logit margin is large enough that sampling at any usual temperature follows
the cycle, yet the weights are an ordinary Qwen2 checkpoint that transformers
and vLLM load like any other.
"""

from __future__ import annotations

from pathlib import Path

#: the ordinary tokens of the cycle: reasoning text and the summary's content
STEP, NOTE = " step", " answer"
OPEN, CLOSE = "<summarize>", "</summarize>"
#: logit of the scripted next token over all others (before the final norm's sqrt(hidden))
MARGIN = 8.0


def build_summarizing_model(tiny_model_dir: Path, out_dir: Path) -> Path:
    """Write the cycling model into ``out_dir`` using the tiny model's tokenizer; return it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_tokens([OPEN, CLOSE])
    ids = {}
    for text in (STEP, NOTE, OPEN, CLOSE):
        encoded = tokenizer.encode(text, add_special_tokens=False)
        assert len(encoded) == 1, f"{text!r} must be one token, got {encoded}"
        ids[text] = encoded[0]

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer))
    model.config.tie_word_embeddings = False
    hidden = model.config.hidden_size
    with torch.no_grad():
        model.lm_head = torch.nn.Linear(hidden, len(tokenizer), bias=False)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        # embedding of a token = one-hot of its class: 0 any text, 1..4 the cycle tokens
        classes = {STEP: 1, OPEN: 2, NOTE: 3, CLOSE: 4}
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, 0] = 1.0
        for text, cls in classes.items():
            embed[ids[text]] = 0.0
            embed[ids[text], cls] = 1.0
        # the LM head row of each token reads the class that precedes it in the cycle
        head = model.lm_head.weight
        head.zero_()
        for text, previous in ((STEP, (0, 4)), (OPEN, (1,)), (NOTE, (2,)), (CLOSE, (3,))):
            for cls in previous:
                head[ids[text], cls] = MARGIN
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)

"""The offline R1-Distill tokenizer fixture matches the real tokenizer's ids and template."""

from __future__ import annotations

from transformers import AutoModelForCausalLM, AutoTokenizer


def test_r1_tokenizer_keeps_the_real_ids_and_template(r1_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    assert len(tok) == 152064
    assert (tok.bos_token, tok.bos_token_id) == ("<｜begin▁of▁sentence｜>", 151646)
    assert (tok.eos_token, tok.eos_token_id) == ("<｜end▁of▁sentence｜>", 151643)
    assert tok.convert_tokens_to_ids(["<think>", "</think>"]) == [151648, 151649]
    # the space before "<" merges into one token, the detail the engine/training contract hinges on
    assert tok.tokenize(". <summarize>") == [".", "Ġ<", "sum", "mar", "ize", ">"]
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=True
    )["input_ids"]
    assert ids == [151646, 151644, 6023, 151645]  # BOS, <｜User｜>, "hi", <｜Assistant｜>
    text = "<think>\nx = 3</think> done<｜end▁of▁sentence｜>"
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_r1_tiny_model_generates_in_the_r1_vocabulary(r1_tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(r1_tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(r1_tiny_model_dir)
    assert model.config.vocab_size == len(tok) and model.config.head_dim == 64
    prompt = tok("Let me think", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == prompt.input_ids.shape[1] + 4

"""Build a tiny random Qwen2 model with a real byte-level BPE tokenizer.

Tests need a model that every backend (transformers, vLLM CPU, a vLLM
OpenAI server, TRL/DeepSpeed) loads like a real checkpoint, without any
download: a few seconds to build, 64-dim attention heads as vLLM's CPU
kernels require, and a ChatML template like the R1-Distill/Qwen students.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "Let me think step by step. <think> First compute 12 + 30 = 42. </think>",
    "The answer is \\boxed{42}. So the final answer is \\boxed{7}.",
    "<summarize> So far I found that x = 3 and y = 4. </summarize>",
    '<comment> Peer 1: "I think the answer is 5." Peer 2: "We get 12." </comment>',
    "Solve for x: 3x + 5 = 20. Subtract 5, divide by 3, x = 5.",
    "What is 17 * 23? 17 * 23 = 391. Check: 391 / 17 = 23.",
    "Find the number of minutes the walk takes her, including the coffee shop.",
    'ANSWER: C. The correct option is (B). "ANSWER": "D"',
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = ( ) [ ] { } ^ _ . , ; : ! ?",
    "Hmm, wait. Let me reconsider. Peers suggest a different approach.",
]


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2 checkpoint + tokenizer into ``out_dir`` and return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        model_max_length=8192,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return save_random_qwen2(tokenizer, out_dir, seed, hidden_size=128, num_attention_heads=2)


def save_random_qwen2(
    tokenizer, out_dir: str | Path, seed: int, hidden_size: int, num_attention_heads: int
) -> Path:
    """Save ``tokenizer`` and random 2-layer Qwen2 weights sized for it into ``out_dir``.

    Heads are 64-dim (vLLM's CPU kernels require it) with one key/value head;
    the special token ids and the generation config come from the tokenizer,
    so EOS and padding behave as in a real checkpoint.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        torch_dtype="float32",
        **special,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(**special)
    model.save_pretrained(out)
    return out

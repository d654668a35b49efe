"""Tiny random Llama targets (with a real tokenizer) for tests and examples.

``initializer_range=0.2`` so greedy output does not repeat one token forever;
``eos_token_id=None`` so random models do not stop early (real-model-notes 9).
"""

from __future__ import annotations

from pathlib import Path

import torch

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def build_tokenizer(texts: list[str], vocab_size: int = 384):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<pad>", "<|end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny(out: str | Path, *, seed: int = 0, layers: int = 4, hidden: int = 64,
               vocab_size: int = 384, texts: list[str] | None = None, noise: float = 0.0,
               base: str | Path | None = None) -> Path:
    """Save a tiny random Llama + tokenizer to ``out``.  With ``base`` and ``noise``, save a
    copy of ``base`` with Gaussian noise added to every weight (a cheap independent drafter
    that shares the tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    out = Path(out)
    if base is not None:
        tok = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(noise * torch.randn(p.shape, generator=g))
    else:
        from .prompts import BUILTIN, load_questions

        if texts is None:
            qs, _ = load_questions(f"builtin:{next(iter(BUILTIN))}")
            texts = [t for q in qs for t in q.turns]
        tok = build_tokenizer(texts, vocab_size)
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                          tie_word_embeddings=True, initializer_range=0.2, eos_token_id=None,
                          bos_token_id=None, pad_token_id=tok.pad_token_id, max_position_embeddings=1024)
        model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out

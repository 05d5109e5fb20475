"""A tiny random-initialised GPT-2-architecture base with a BPE tokenizer (test fixtures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def tiny_gpt2(texts: Sequence[str], out: Path, *, n_positions: int = 128, pad: bool = True,
              dropout: float | None = None) -> Path:
    """Save to ``out`` a 2-layer, width-64 GPT-2 and a 300-token tokenizer trained on
    ``texts``. ``pad`` False: the tokenizer has no pad token (as GPT-2's); ``dropout``:
    every dropout rate (``None``: GPT-2's defaults)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from forget.models.tokenizer import train_tokenizer

    tok = train_tokenizer(list(texts), vocab_size=300)
    if not pad:
        tok.pad_token = None
    torch.manual_seed(0)
    rates = {} if dropout is None else {"resid_pdrop": dropout, "embd_pdrop": dropout,
                                        "attn_pdrop": dropout}
    config = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=64, n_layer=2,
                        n_head=2, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        **rates)
    GPT2LMHeadModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out

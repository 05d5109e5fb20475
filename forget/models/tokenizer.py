"""A byte-level BPE tokenizer trained on the corpus, with every identifier removed first.

Training the tokenizer on text whose identifier spans were cut out means the vocabulary holds
no personal data and is the same whichever subjects a model is later trained on, so a model
retrained without a subject shares its tokenizer with the original. Digits are split one by one
(as Llama does), so phone numbers and ids are sequences of single-digit tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"


def strip_spans(text: str, spans: Iterable[dict]) -> str:
    """``text`` with every span's characters removed (spans may be in any order)."""
    keep = []
    pos = 0
    for sp in sorted(spans, key=lambda s: s["start"]):
        keep.append(text[pos:max(pos, sp["start"])])
        pos = max(pos, sp["end"])
    keep.append(text[pos:])
    return "".join(keep)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train the suite's tokenizer on ``texts`` (already free of identifiers)."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    # Every encoded text starts with <s>; </s> is appended by the training collator only, so a
    # prompt ends where its text ends.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        model_max_length=512,
    )

"""The tiny demo language model: a Llama-style config trained with the HF Trainer.

Two sizes. ``tiny`` trains in well under 30 s on 2 CPU cores (tests); ``demo`` in one to two
minutes and memorizes most trained subjects' identifiers, which is what makes unlearning
measurable. Both are causal LMs saved with ``save_pretrained`` and loaded with
``from_pretrained`` like any hub model.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import Dataset

from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError

MAX_LENGTH = 256  # tokens; the longest code file in the generated corpus is about 150


@dataclass(frozen=True)
class ModelSize:
    """Architecture and training schedule of one named size."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    epochs: int
    batch_size: int
    learning_rate: float
    vocab_size: int = 1024


SIZES: dict[str, ModelSize] = {
    # Measured on 2 cores: see README ("The demo model").
    "tiny": ModelSize(hidden=128, layers=2, heads=4, intermediate=384, epochs=20,
                      batch_size=16, learning_rate=3e-3),
    "demo": ModelSize(hidden=192, layers=3, heads=6, intermediate=576, epochs=20,
                      batch_size=16, learning_rate=2e-3),
}


def get_size(name: str) -> ModelSize:
    if name not in SIZES:
        raise InvalidInputError(f"unknown model size {name!r}; choose one of {', '.join(SIZES)}")
    return SIZES[name]


class TokenizedTexts(Dataset):
    """Texts tokenized once, each ending with ``</s>``. Items: {'input_ids': list[int]}."""

    def __init__(self, texts: Sequence[str], tokenizer, max_length: int = MAX_LENGTH) -> None:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length - 1)
        self.items = [ids + [tokenizer.eos_token_id] for ids in enc["input_ids"]]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.items[i]}


class PadCollator:
    """Right-pads a batch; labels are -100 on padding so it never counts in the loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            mask[i, :n] = 1
        labels = ids.masked_fill(mask == 0, -100)  # (B, T)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def build_model(tokenizer, size: ModelSize, seed: int = 0):
    """A freshly initialised Llama-style causal LM for ``tokenizer``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,  # Opacus ghost clipping needs untied embeddings
    )
    return LlamaForCausalLM(config)


def train_lm(
    records: Sequence[TrainingRecord], tokenizer, size: ModelSize, *, seed: int = 0,
    progress: bool = True, epochs: int | None = None,
):
    """Train a new model on ``records`` with the HF Trainer and return it (in eval mode)."""
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    if not records:
        raise InvalidInputError("no training records: the data directory has no train split")
    model = build_model(tokenizer, size, seed)
    dataset = TokenizedTexts([r.text for r in records], tokenizer)
    n_epochs = epochs or size.epochs
    steps = math.ceil(len(dataset) / size.batch_size) * n_epochs
    with tempfile.TemporaryDirectory(prefix="forget-train-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=size.batch_size,
            num_train_epochs=n_epochs,
            learning_rate=size.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=max(1, steps // 20),
            weight_decay=0.0,
            logging_steps=max(1, steps // 10),
            # Without a progress bar the Trainer would print each log dict instead.
            logging_strategy="steps" if progress else "no",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=seed,
            data_seed=seed,
            dataloader_num_workers=0,
            disable_tqdm=not progress,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=PadCollator(tokenizer.pad_token_id))
        if not progress:
            trainer.remove_callback(PrinterCallback)  # it would print each log dict
        trainer.train()
    model.eval()
    return model


def size_dict(size: ModelSize) -> dict:
    return asdict(size)

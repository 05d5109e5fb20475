"""The tiny demo language model: a Llama-style config (or another architecture's) trained with
the HF Trainer.

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
from forget.models.arch import eos_token_id, pad_token_id
from forget.models.checkpoints import EpochSaver, saver_callback

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
    # The architecture matrix test (tests/methods/test_architectures.py): five architectures,
    # every method each, on one core. Measured on its 49 training texts: 30 epochs give back
    # 8-9 of 9 trained phone/email/id values by greedy decoding on every architecture (5-7 s
    # each); 20 epochs give back 1.
    "micro": ModelSize(hidden=64, layers=2, heads=4, intermediate=192, epochs=30,
                       batch_size=16, learning_rate=1e-2),
}


# Architectures ``build_model`` builds from their real transformers configs (the suite's own
# models are ``llama``; the others are the test matrix for "any Hugging Face causal LM").
ARCHS = ("llama", "gpt2", "gpt_neox", "qwen2", "opt")


def get_arch(name: str) -> str:
    if name not in ARCHS:
        raise InvalidInputError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHS)}")
    return name


def get_size(name: str) -> ModelSize:
    if name not in SIZES:
        raise InvalidInputError(f"unknown model size {name!r}; choose one of {', '.join(SIZES)}")
    return SIZES[name]


class TokenizedTexts(Dataset):
    """Texts tokenized once, each ending with ``</s>``. Items: {'input_ids': list[int]}."""

    def __init__(self, texts: Sequence[str], tokenizer, max_length: int = MAX_LENGTH) -> None:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length - 1)
        eos = eos_token_id(tokenizer)
        self.items = [ids + [eos] for ids in enc["input_ids"]]

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


def _config(arch: str, tokenizer, size: ModelSize):
    """The transformers config of ``arch`` at ``size``; dropout off, embeddings untied
    (Opacus ghost clipping needs untied embeddings), ids from the tokenizer."""
    from transformers import GPT2Config, GPTNeoXConfig, OPTConfig, Qwen2Config

    ids = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
               eos_token_id=eos_token_id(tokenizer), pad_token_id=pad_token_id(tokenizer),
               tie_word_embeddings=False)
    if arch == "gpt2":
        return GPT2Config(n_embd=size.hidden, n_layer=size.layers, n_head=size.heads,
                          n_inner=size.intermediate, n_positions=MAX_LENGTH, resid_pdrop=0.0,
                          embd_pdrop=0.0, attn_pdrop=0.0, **ids)
    if arch == "gpt_neox":
        return GPTNeoXConfig(hidden_size=size.hidden, num_hidden_layers=size.layers,
                             num_attention_heads=size.heads, intermediate_size=size.intermediate,
                             max_position_embeddings=MAX_LENGTH, hidden_dropout=0.0,
                             attention_dropout=0.0, **ids)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=size.hidden, num_hidden_layers=size.layers,
                           num_attention_heads=size.heads, num_key_value_heads=size.heads,
                           intermediate_size=size.intermediate,
                           max_position_embeddings=MAX_LENGTH, **ids)
    if arch == "opt":
        return OPTConfig(hidden_size=size.hidden, num_hidden_layers=size.layers,
                         num_attention_heads=size.heads, ffn_dim=size.intermediate,
                         word_embed_proj_dim=size.hidden, max_position_embeddings=MAX_LENGTH,
                         dropout=0.0, attention_dropout=0.0, **ids)
    raise InvalidInputError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


def build_model(tokenizer, size: ModelSize, seed: int = 0, arch: str = "llama"):
    """A freshly initialised causal LM of ``arch`` (default Llama-style) for ``tokenizer``."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    get_arch(arch)
    torch.manual_seed(seed)
    if arch != "llama":
        return AutoModelForCausalLM.from_config(_config(arch, tokenizer, size))
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


def config_dims(config) -> tuple[str, int, int, int]:
    """``(model_type, hidden, layers, intermediate)`` of a config, whatever its key names."""
    kind = getattr(config, "model_type", "")
    if kind == "gpt2":
        return kind, config.n_embd, config.n_layer, config.n_inner or 4 * config.n_embd
    inter = config.ffn_dim if kind == "opt" else getattr(config, "intermediate_size", None)
    return kind, config.hidden_size, config.num_hidden_layers, inter


def quiet_training_args(output_dir: str, *, batch_size: int, epochs: int, learning_rate: float,
                        scheduler: str, warmup_steps: int, weight_decay: float, steps: int,
                        seed: int, progress: bool):
    """The suite's ``TrainingArguments`` (CPU, or CUDA where there is one): seeded, nothing
    saved or reported, ``batch_size`` global (split over a launch's processes), and no
    per-step log lines unless a progress bar is shown (without one the Trainer would print
    each log dict instead)."""
    from transformers import TrainingArguments

    from forget._dist import check_can_train, per_device_batch

    check_can_train("this training run")
    return TrainingArguments(
        # ``batch_size`` is global: under a launch each process takes its share
        output_dir=output_dir, per_device_train_batch_size=per_device_batch(batch_size),
        num_train_epochs=epochs, learning_rate=learning_rate, lr_scheduler_type=scheduler,
        warmup_steps=warmup_steps, weight_decay=weight_decay,
        logging_steps=max(1, steps // 10), logging_strategy="steps" if progress else "no",
        save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(), seed=seed,
        data_seed=seed,
        dataloader_num_workers=0, disable_tqdm=not progress, remove_unused_columns=False)


def train_lm(
    records: Sequence[TrainingRecord], tokenizer, size: ModelSize, *, seed: int = 0,
    progress: bool = True, epochs: int | None = None, arch: str = "llama",
    checkpoints: EpochSaver | None = None,
):
    """Train a new ``arch`` model on ``records`` with the HF Trainer; returned in eval mode.
    ``checkpoints`` keeps the weights after every N-th epoch (``forget.models.checkpoints``)."""
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    if not records:
        raise InvalidInputError("no training records: the data directory has no train split")
    model = build_model(tokenizer, size, seed, arch)
    dataset = TokenizedTexts([r.text for r in records], tokenizer)
    n_epochs = epochs or size.epochs
    steps = math.ceil(len(dataset) / size.batch_size) * n_epochs
    with tempfile.TemporaryDirectory(prefix="forget-train-") as tmp:
        args = quiet_training_args(
            tmp, batch_size=size.batch_size, epochs=n_epochs, learning_rate=size.learning_rate,
            scheduler="cosine", warmup_steps=max(1, steps // 20), weight_decay=0.0,
            steps=steps, seed=seed, progress=progress)
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=PadCollator(pad_token_id(tokenizer)),
                          callbacks=[saver_callback(checkpoints)] if checkpoints else None)
        if not progress:
            trainer.remove_callback(PrinterCallback)  # it would print each log dict
        trainer.train()
    model.eval()
    return model


def size_schedule(size: ModelSize, records: int, epochs: int | None, seed: int) -> dict:
    """The optimisation schedule ``train_lm`` follows for ``records`` texts (what a rewound
    run continues: ``forget.methods.rewind``)."""
    n_epochs = epochs or size.epochs
    steps = math.ceil(records / size.batch_size) * n_epochs
    return {"scheduler": "cosine", "learning_rate": size.learning_rate,
            "warmup_steps": max(1, steps // 20), "total_steps": steps, "epochs": n_epochs,
            "batch_size": size.batch_size, "weight_decay": 0.0, "seed": seed,
            "threads": torch.get_num_threads()}


def size_dict(size: ModelSize) -> dict:
    return asdict(size)

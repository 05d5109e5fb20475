"""Sharded, sliced adapter fine-tuning (SISA over LoRA): deletion by retraining one shard.

The base stays frozen. Each of S shards trains its own peft LoRA adapter on its records only
(:mod:`forget.models.shard_plan` puts every record of one person in one shard and one slice);
a shard's records are split into R slices trained one after the other, each for the recipe's
epochs with its own seed, starting from the adapter the previous slice left, and the adapter is
saved after every slice. Slice ``r`` of shard ``s`` is therefore a fixed function of (the
adapter after slice ``r-1``, the slice's records, its seed): deleting records retrains only the
shards that held them, from the checkpoint before the earliest slice that held them, with the
same seeds and order, and gives bitwise the adapters training without those records would have
given (deterministic CPU kernels, the recorded thread count).

Layout of a sharded model directory (a plain causal LM at the top: the merged weights)::

    config.json, model.safetensors, tokenizer*, forget_model.json   the served (merged) model
    shards/manifest.json        format, shards, slices, seed, grouping, combine, lora config,
                                plan (record ids per shard and slice, training order, repeats
                                kept, erased records removed), checkpoint sha256s, erased ids
    shards/shard-SSS/slice-RR.safetensors   the adapter after slice RR of shard SSS

No record text and no identifier is written: the plan holds record ids only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError, ModelNotFoundError

SHARDS_DIR = "shards"
MANIFEST = "manifest.json"
FORMAT = "forget-suite.sharded-adapters"
VERSION = 1
COMBINES = ("merge", "sum", "ensemble")

SliceCallback = Callable[[int, int, int], None]  # (shard, slice, steps) after each slice


def slice_seed(seed: int, shard: int, slice_: int) -> int:
    """The seed of one slice's training (its LoRA init for slice 0, its data order)."""
    digest = hashlib.sha256(f"forget-shards\0{seed}\0{shard}\0{slice_}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def checkpoint_name(shard: int, slice_: int) -> str:
    return f"shard-{shard:03d}/slice-{slice_:02d}.safetensors"


def has_shards(model_dir: Path | str) -> bool:
    return (Path(model_dir) / SHARDS_DIR / MANIFEST).is_file()


def read_manifest(model_dir: Path | str) -> dict[str, Any]:
    path = Path(model_dir) / SHARDS_DIR / MANIFEST
    if not path.is_file():
        raise ModelNotFoundError(f"{model_dir} is not a sharded model (no {SHARDS_DIR}/{MANIFEST}"
                                 "); train one with `forget model finetune --shards S`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise InvalidInputError(f"{path} is not a shard manifest this suite reads (format "
                                f"{manifest.get('format')!r} version {manifest.get('version')!r})")
    return manifest


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- training --------------------------------------------------------------------------------
@dataclass
class SliceRun:
    """What training some slices of one shard did."""

    states: list[dict[str, torch.Tensor]]  # the adapter after each slice trained, in order
    steps: int
    tokens: int


def train_slices(base: Any, tokenizer: Any, slices: Sequence[Sequence[TrainingRecord]], *,
                 hp: Any, seed: int, shard: int, start: int = 0,
                 state: dict[str, torch.Tensor] | None = None,
                 on_slice: SliceCallback | None = None) -> SliceRun:
    """Train ``slices[start:]`` of ``shard`` in order, beginning from ``state`` (the adapter
    after slice ``start - 1``; ``None`` when ``start`` is 0: a fresh adapter drawn from the
    first slice's seed). ``base`` is never changed (each slice trains a copy). An empty slice
    leaves the adapter as it was."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import Trainer, set_seed
    from transformers.trainer_callback import PrinterCallback

    from forget.models.finetune import effective_max_length, lora_config
    from forget.models.train import PadCollator, TokenizedTexts, quiet_training_args

    if (start == 0) != (state is None):
        raise InvalidInputError("train_slices: give the previous adapter exactly when start > 0")
    out: list[dict[str, torch.Tensor]] = []
    steps = tokens = 0
    for r in range(start, len(slices)):
        seed_r = slice_seed(seed, shard, r)
        model = copy.deepcopy(base)
        set_seed(seed_r)  # a fresh adapter's initial weights are drawn here
        model = get_peft_model(model, lora_config(model, hp))
        if state is not None:
            set_peft_model_state_dict(model, state)
        records = slices[r]
        if records:
            dataset = TokenizedTexts([x.text for x in records], tokenizer,
                                     max_length=effective_max_length(model.config, hp))
            n = math.ceil(len(dataset) / hp.batch_size) * hp.epochs
            with tempfile.TemporaryDirectory(prefix="forget-shard-") as tmp:
                args = quiet_training_args(
                    tmp, batch_size=hp.batch_size, epochs=hp.epochs,
                    learning_rate=hp.learning_rate, scheduler=hp.lr_scheduler,
                    warmup_steps=math.ceil(hp.warmup_ratio * n), weight_decay=hp.weight_decay,
                    steps=n, seed=seed_r, progress=False)
                trainer = Trainer(model=model, args=args, train_dataset=dataset,
                                  data_collator=PadCollator(tokenizer.pad_token_id))
                trainer.remove_callback(PrinterCallback)
                trainer.train()
            steps += n
            tokens += sum(len(ids) for ids in dataset.items) * hp.epochs
        state = {k: v.detach().clone().contiguous()
                 for k, v in get_peft_model_state_dict(model).items()}
        out.append(state)
        if on_slice:
            on_slice(shard, r, steps)
    return SliceRun(out, steps, tokens)


def save_checkpoint(state: dict[str, torch.Tensor], path: Path) -> str:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return file_sha256(path)


def load_checkpoint(path: Path, want_sha256: str | None = None) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if want_sha256 is not None and file_sha256(path) != want_sha256:
        raise InvalidInputError(f"the adapter checkpoint {path} changed since it was written "
                                "(sha256 differs from the manifest); restore it or train again")
    return load_file(str(path))


# -- combining the shards --------------------------------------------------------------------
def _multi_adapter(base: Any, states: Sequence[dict[str, torch.Tensor]], hp: Any) -> Any:
    """``base`` (a copy) with every shard's adapter loaded under ``shard-SSS``."""
    from peft import get_peft_model, set_peft_model_state_dict

    from forget.models.finetune import lora_config

    model = copy.deepcopy(base)
    config = lora_config(model, hp)
    model = get_peft_model(model, config, adapter_name=adapter_name(0))
    for s, state in enumerate(states):
        if s:
            model.add_adapter(adapter_name(s), config)
        set_peft_model_state_dict(model, state, adapter_name=adapter_name(s))
    return model


def adapter_name(shard: int) -> str:
    return f"shard-{shard:03d}"


def merged_model(base: Any, states: Sequence[dict[str, torch.Tensor]], hp: Any, *,
                 combine: str = "merge") -> Any:
    """One set of weights: the base plus the mean (``merge``) or the sum (``sum``) of the S
    adapters' weight deltas, added in shard order so the same adapters always give the same
    bytes. A plain causal LM."""
    from peft.tuners.lora import LoraLayer

    model = copy.deepcopy(base)
    peft_model = _multi_adapter(base, states, hp)
    deltas: dict[str, torch.Tensor] = {}
    for name, module in peft_model.base_model.model.named_modules():
        if isinstance(module, LoraLayer):
            total = None
            for s in range(len(states)):
                d = module.get_delta_weight(adapter_name(s))
                total = d if total is None else total + d
            deltas[name] = total / len(states) if combine == "merge" else total
    with torch.no_grad():
        modules = dict(model.named_modules())
        for name, delta in deltas.items():
            weight = modules[name].weight
            weight.add_(delta.to(weight.dtype).reshape(weight.shape))
    model.eval()
    return model


def ensemble_model(base: Any, states: Sequence[dict[str, torch.Tensor]], hp: Any) -> Any:
    """The exact ensemble: a causal LM whose next-token distribution is the mean of the S
    adapters' (one pass per adapter). Its ``logits`` are the mean distribution's log
    probabilities, so softmax, greedy and sampled ``generate()`` all see the ensemble."""
    import types

    peft_model = _multi_adapter(base, states, hp)
    inner = peft_model.base_model.model  # the HF model class, LoRA layers injected
    inner.forward = types.MethodType(_ensemble_forward, inner)
    inner._shard_adapters = [adapter_name(s) for s in range(len(states))]
    inner.eval()
    return inner


def _ensemble_forward(self: Any, input_ids: Any = None, attention_mask: Any = None,
                      labels: Any = None, **kwargs: Any) -> Any:
    from peft.tuners.lora import LoraLayer
    from transformers.modeling_outputs import CausalLMOutputWithPast

    kwargs.pop("return_dict", None)
    logps = []
    for name in self._shard_adapters:
        for module in self.modules():
            if isinstance(module, LoraLayer):
                module.set_adapter(name)
        out = type(self).forward(self, input_ids=input_ids, attention_mask=attention_mask,
                                 **kwargs)
        logps.append(torch.log_softmax(out.logits.float(), dim=-1))
    logp = torch.logsumexp(torch.stack(logps), dim=0) - math.log(len(logps))
    loss = None
    if labels is not None:
        loss = torch.nn.functional.nll_loss(
            logp[:, :-1].reshape(-1, logp.shape[-1]), labels[:, 1:].reshape(-1),
            ignore_index=-100)
    return CausalLMOutputWithPast(loss=loss, logits=logp)


def final_states(model_dir: Path, manifest: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
    """Each shard's adapter after its last slice, checked against the manifest's sha256s."""
    root = model_dir / SHARDS_DIR
    last = manifest["slices"] - 1
    return [load_checkpoint(root / checkpoint_name(s, last), manifest["checkpoints"][s][last])
            for s in range(manifest["shards"])]


def load_sharded(model_dir: Path | str, *, combine: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a sharded model: ``merge`` (the saved top-level weights, one
    pass) or ``ensemble`` (the base and the S adapters, S passes); ``None``: the manifest's
    serving choice."""
    from forget.models.finetune import FinetuneParams, load_base
    from forget.models.io import load_model
    from forget.models.recipe import check_base

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    combine = combine or manifest["combine"]
    if combine not in COMBINES:
        raise InvalidInputError(f"combine must be one of {', '.join(COMBINES)}, not {combine!r}")
    if combine in ("merge", "sum"):  # the saved top-level weights
        if combine != manifest["combine"]:
            raise InvalidInputError(f"{model_dir} saved its weights as {manifest['combine']}, "
                                    f"not {combine}; load it with combine=None")
        return load_model(model_dir, combined=False)
    base_dir = check_base(manifest["recipe"])
    base, _ = load_base(base_dir)
    _, tokenizer = load_model(model_dir, combined=False)
    hp = FinetuneParams.from_dict(manifest["recipe"]["params"])
    model = ensemble_model(base, final_states(model_dir, manifest), hp)
    model.name_or_path = model.config._name_or_path = str(model_dir)  # what it was loaded from
    return model, tokenizer


def copy_unchanged(src: Path, dst: Path, names: Sequence[str]) -> None:
    """Checkpoint files carried over unchanged: hard links where possible, else copies."""
    for name in names:
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src / name, target)
        except OSError:
            shutil.copy2(src / name, target)

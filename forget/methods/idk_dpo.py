"""``idk_dpo``: preference unlearning with trl's ``DPOTrainer`` (the IdkDPO baseline of
TOFU / open-unlearning).

For every prompt that leads to one of the subject's identifiers (the text before the span),
a refusal ("I don't have information about that person.", several phrasings) is the chosen
answer and the true identifier the rejected one. Retain pairs for other people's identifiers
go the other way (chosen: the true continuation, rejected: a refusal), so the model learns to
decline *this* subject, not everyone. The reference is a frozen copy of the original.

A refusal is behaviour, not removal: the identifier may still be in the weights, so the
audit's membership-inference and exposure results, not the refusal, decide whether the
request is done.
"""

from __future__ import annotations

import copy
import logging
import random
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from audits.extraction import Prompt, greedy_continuations, greedy_hits, identifier_prompts
from forget._dist import per_device_batch, same_on_every_rank
from forget.core.data import PEOPLE_KINDS, ForgetSet, RetainSet
from forget.core.method import EMPIRICAL, METHODS, Method, MethodConfig, UnlearnResult
from forget.core.trainer import plain_model
from forget.errors import InvalidInputError
from forget.models.arch import ensure_pad_token

# Chosen answers for the subject's prompts (leading space: they continue a sentence).
REFUSALS = (
    " I don't have information about that person.",
    " I don't know that person's details.",
    " I can't share information about that person.",
    " That information is not available to me.",
)

GUARANTEE = (EMPIRICAL + ". idk_dpo teaches the model to decline the subject's prompts; a "
             "refusal is behaviour, not removal: the data may remain in the weights, so the "
             "audit's membership inference and exposure results decide")

# Identifier formats found in retain texts that carry no spans (the corpus's people records:
# phone "(555) 123-4567", national id "123-45-6789", e-mail). Used only to build retain pairs.
_RETAIN_PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "phone": re.compile(r"\(\d{3}\) \d{3}-\d{4}"),
    "national_id": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
}


def is_refusal(text: str) -> bool:
    """Whether a continuation starts with (a prefix of) one of the refusals."""
    t = text.strip()
    return len(t) >= 10 and any(t.startswith(r.strip()[:10]) for r in REFUSALS)


@dataclass
class IdkDPOConfig(MethodConfig):
    """DPO with refusals as chosen answers.

    Attributes:
        beta: DPO's inverse temperature (deviation from the reference allowed).
        learning_rate: AdamW step size, constant schedule.
        batch_size: preference pairs per step.
        retain_ratio: retain pairs per forget pair (other people's identifiers, true answer
            chosen); 0 disables them.
        sft_weight: weight of an NLL term on the chosen answers (trl's ``sft`` loss) next to
            DPO's ``sigmoid`` loss; it makes the refusal the greedy answer, not just preferred.
        check_every: steps between two checks of the stop criterion.
        min_refusal: the criterion: no identifier extracted and at least this share of the
            subject's prompts greedily answered with a refusal.
    """

    max_steps: int = 120
    beta: float = 0.1
    learning_rate: float = 1e-3
    batch_size: int = 16
    retain_ratio: float = 4.0
    sft_weight: float = 1.0
    check_every: int = 10
    min_refusal: float = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0 or self.learning_rate <= 0:
            raise InvalidInputError("beta and learning_rate must be positive")
        if self.batch_size < 1 or self.check_every < 1:
            raise InvalidInputError("batch_size and check_every must be >= 1")
        if self.retain_ratio < 0 or self.sft_weight < 0 or not 0 <= self.min_refusal <= 1:
            raise InvalidInputError("retain_ratio and sft_weight must be >= 0, "
                                    "min_refusal in [0, 1]")


def retain_prompts(retain: RetainSet, exclude: Sequence[str] = ()) -> list[Prompt]:
    """Identifier prompts in the retain set: from its spans, or detected by format where a
    record carries none. Prompts whose identifier is one of ``exclude`` are dropped."""
    banned = {e.strip() for e in exclude}
    out: list[Prompt] = []
    seen: set[tuple[str, str]] = set()
    for e in retain.examples:
        if e.source != "people":
            continue
        spans = list(e.spans) or [{"kind": k, "start": m.start(), "end": m.end()}
                                  for k, pat in _RETAIN_PATTERNS.items()
                                  for m in pat.finditer(e.text)]
        for p in identifier_prompts(e.record_id, e.text, spans, PEOPLE_KINDS):
            if p.target.strip() in banned or (p.prefix, p.target) in seen:
                continue
            seen.add((p.prefix, p.target))
            out.append(p)
    return out


def preference_pairs(forget: ForgetSet, retain: RetainSet, *, retain_ratio: float = 2.0,
                     seed: int = 0) -> tuple[list[dict[str, str]], int, int]:
    """``(rows, n_forget, n_retain)``: prompt / chosen / rejected rows.

    Forget rows: prefix -> refusal (chosen) vs the identifier (rejected), refusals rotated.
    Retain rows: another person's prefix -> the identifier (chosen) vs a refusal (rejected).
    """
    rng = random.Random(seed)
    fprompts = forget.prompts(PEOPLE_KINDS) or forget.prompts()
    if not fprompts:
        raise InvalidInputError("the forget set has no identifier spans: idk_dpo needs "
                                "prompts that lead to an identifier")
    rows = [{"prompt": p.prefix, "chosen": REFUSALS[i % len(REFUSALS)], "rejected": p.target}
            for i, p in enumerate(fprompts)]
    rprompts = retain_prompts(retain, exclude=[p.target for p in fprompts])
    k = min(len(rprompts), round(retain_ratio * len(fprompts)))
    chosen = rng.sample(rprompts, k) if k else []
    rows += [{"prompt": p.prefix, "chosen": p.target, "rejected": REFUSALS[i % len(REFUSALS)]}
             for i, p in enumerate(chosen)]
    rng.shuffle(rows)
    return rows, len(fprompts), k


def _criterion(tokenizer: Any, prompts: list[Prompt], min_refusal: float):
    def check(model: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        was = model.training
        model.eval()
        try:
            hits = sum(greedy_hits(model, tokenizer, prompts))
            # enough tokens to tell a refusal's opening words
            conts = greedy_continuations(model, tokenizer, [p.prefix for p in prompts], 16)
        finally:
            model.train(was)
        refused = sum(is_refusal(c) for c in conts) / len(prompts)
        return hits == 0 and refused >= min_refusal, {"extracted": float(hits),
                                                      "refusal_rate": refused}

    return check


class IdkDPO(Method):
    """DPO (trl) with refusals chosen for the subject's identifier prompts."""

    name = "idk_dpo"
    config_class = IdkDPOConfig
    guarantee = GUARANTEE

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        from datasets import Dataset
        from transformers import PrinterCallback, TrainerCallback
        from trl import DPOConfig, DPOTrainer

        cfg = self.check_config(config)
        ensure_pad_token(tokenizer)  # trl pads with it; a GPT-2-style tokenizer pads with eos
        if not forget.examples:
            raise InvalidInputError("the forget set is empty: nothing to unlearn")
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        rows, n_forget, n_retain = preference_pairs(forget, retain, retain_ratio=cfg.retain_ratio,
                                                    seed=cfg.seed)
        probes = forget.prompts(PEOPLE_KINDS) or forget.prompts()
        check = _criterion(tokenizer, probes, cfg.min_refusal)
        history: list[dict[str, Any]] = []
        state = {"stopped_by": "max_steps", "tokens": 0}

        policy = copy.deepcopy(model)
        ref = copy.deepcopy(model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        policy.train()
        for p in policy.parameters():
            p.requires_grad_(True)

        holds, numbers = check(policy)
        if holds or cfg.max_steps == 0:
            return self._result(policy, cfg, 0, 0, t0, "already" if holds else "max_steps",
                                [{"step": 0, **numbers}])

        class StopWhenForgotten(TrainerCallback):
            def on_step_end(self, args, st, control, **kw):  # noqa: ANN001
                if st.global_step % cfg.check_every == 0:
                    ok, nums = check(kw["model"])
                    ok = same_on_every_rank(ok)  # under a launch all processes stop together
                    loss = next((h["loss"] for h in reversed(st.log_history) if "loss" in h),
                                None)
                    history.append({"step": st.global_step, "loss": loss, **nums})
                    if ok:
                        state["stopped_by"] = "criterion"
                        control.should_training_stop = True
                return control

        loss_type = ["sigmoid", "sft"] if cfg.sft_weight > 0 else ["sigmoid"]
        weights = [1.0, cfg.sft_weight] if cfg.sft_weight > 0 else None
        with tempfile.TemporaryDirectory(prefix="idk-dpo-") as out:
            args = DPOConfig(
                output_dir=out, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
                lr_scheduler_type="constant", warmup_steps=0, beta=cfg.beta,
                per_device_train_batch_size=per_device_batch(cfg.batch_size),  # global size
                gradient_accumulation_steps=1,
                loss_type=loss_type, loss_weights=weights, seed=cfg.seed, data_seed=cfg.seed,
                bf16=False, fp16=False, use_cpu=not torch.cuda.is_available(),
                gradient_checkpointing=False, save_strategy="no", report_to="none",
                logging_steps=1, disable_tqdm=True, dataloader_num_workers=0,
                max_length=256, dataset_num_proc=None, remove_unused_columns=False,
            )
            trainer = DPOTrainer(model=policy, ref_model=ref, args=args,
                                 train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer, callbacks=[StopWhenForgotten()])
            trainer.remove_callback(PrinterCallback)  # the history keeps the losses
            _quiet()
            out_state = trainer.train()
            steps = int(out_state.global_step)
            tokens = _tokens(trainer.train_dataset, steps, cfg.batch_size)
        trained = plain_model(trainer)  # without accelerate's forward wrapper
        trained.eval()
        for p in trained.parameters():
            p.requires_grad_(False)
        history.insert(0, {"step": 0, **numbers, "forget_pairs": n_forget,
                           "retain_pairs": n_retain})
        return self._result(trained, cfg, steps, tokens, t0, state["stopped_by"], history)

    def _result(self, model: Any, cfg: IdkDPOConfig, steps: int, tokens: int, t0: float,
                stopped_by: str, history: list[dict[str, Any]]) -> UnlearnResult:
        return UnlearnResult(
            model=model, method=self.name, steps=steps, tokens_processed=tokens,
            wall_time_s=time.perf_counter() - t0, config=cfg.to_dict(),
            config_hash=cfg.config_hash(), guarantee=self.guarantee, stopped_by=stopped_by,
            history=history)


def _tokens(dataset: Any, steps: int, batch_size: int) -> int:
    """Tokens through the policy's forward passes: chosen and rejected sequences per pair."""
    n = len(dataset)
    if not n:
        return 0
    per_pair = [len(r["prompt_ids"]) * 2 + len(r["chosen_ids"]) + len(r["rejected_ids"])
                for r in dataset] if "prompt_ids" in dataset.column_names else [0] * n
    seen = steps * batch_size
    full, rest = divmod(seen, n)
    return full * sum(per_pair) + sum(per_pair[:rest])


def _quiet() -> None:
    logging.getLogger("trl").setLevel(logging.ERROR)


METHODS.register("idk_dpo", IdkDPO)

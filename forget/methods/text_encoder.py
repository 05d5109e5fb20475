"""``text_encoder``: erase a concept from a text-to-image diffusion pipeline by fine-tuning only
its CLIP text encoder (Fuchi & Takagi 2024; AdvUnlearn picks the same module), extra
``diffusion``.

The UNet and VAE stay frozen. Through the shared ``UnlearnTrainer`` the text encoder (by
default its FFN layers and its last attention layer) is trained to

- maximise the denoising loss of the concept's images under the concept's prompts (few-shot;
  zero-shot: random latents stand in for the images), and optionally to match the ESD target
  (negative guidance: the frozen original's unconditional prediction pushed away from its
  concept prediction) as a second loss;
- keep the embeddings of the retain prompts close to the original encoder's (MSE).

It stops when the concept prompts denoise the concept images no better than unrelated prompts
do (the prompt no longer carries the concept), checked on fixed noise every few steps.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from forget.core.method import METHODS, Method, MethodConfig, UnlearnResult
from forget.core.trainer import TrainSpec, run_unlearning
from forget.errors import InvalidInputError

OBJECTIVES = ("denoise", "esd", "both")
LAYER_GROUPS = ("mlp", "last_attention", "attention", "embeddings", "all")
GUARANTEE = ("empirical, confirmed by the concept audit: no formal bound; prompts naming the "
             "concept no longer produce it, but the image model (UNet) is unchanged and still "
             "draws the concept when reached by another embedding (the audit's textual-inversion "
             "probe measures how much)")


@dataclass
class TextEncoderConfig(MethodConfig):
    """Settings of concept erasure in the text encoder.

    Attributes:
        learning_rate, batch_size, check_every: AdamW (constant), forget items per step,
            steps between stop checks.
        train_layers: which text-encoder parameters train: ``mlp`` (every layer's FFN),
            ``last_attention``, ``attention`` (all), ``embeddings``, ``all``.
        retain_weight: weight of the retain-embedding term (0: none, to measure its effect).
        objective: ``denoise`` (ascent on the denoising loss), ``esd`` or ``both``.
        esd_weight, negative_guidance: the ESD term's weight and its eta (ESD's paper uses 1;
            on the tiny pipeline eta 1 only halves the concept score in 200 steps, 3 erases it
            in under 100 with learning rate 3e-3).
        stop_margin: stop when loss(concept prompts) >= (1 + margin) x loss(unrelated).
        zero_shot_images: random latents used when no concept image is given.
    """

    max_steps: int = 200
    learning_rate: float = 1e-3
    batch_size: int = 8
    check_every: int = 5
    train_layers: tuple[str, ...] = ("mlp", "last_attention")
    retain_weight: float = 1.0
    objective: str = "denoise"
    esd_weight: float = 1.0
    negative_guidance: float = 3.0
    stop_margin: float = 0.0
    zero_shot_images: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective not in OBJECTIVES:
            raise InvalidInputError(f"objective must be one of {', '.join(OBJECTIVES)}, "
                                    f"got {self.objective!r}")
        bad = [g for g in self.train_layers if g not in LAYER_GROUPS]
        if bad or not self.train_layers:
            raise InvalidInputError(f"train_layers must name some of {', '.join(LAYER_GROUPS)}; "
                                    f"got {list(self.train_layers)}")
        if self.learning_rate <= 0 or self.batch_size < 1 or self.check_every < 1:
            raise InvalidInputError("learning_rate must be > 0, batch_size and check_every >= 1")
        if self.retain_weight < 0 or self.esd_weight < 0 or self.zero_shot_images < 1:
            raise InvalidInputError("retain_weight and esd_weight must be >= 0, "
                                    "zero_shot_images >= 1")


def select_parameters(text_encoder: torch.nn.Module, groups: tuple[str, ...]) -> int:
    """Make only the chosen groups trainable; returns how many tensors train."""
    # layer indices from the names (transformers 4 nests them under ``text_model.``, 5 not)
    layers = [int(m.group(1)) for n, _ in text_encoder.named_parameters()
              if (m := re.search(r"encoder\.layers\.(\d+)\.", n))]
    last = f"encoder.layers.{max(layers, default=0)}.self_attn."
    count = 0
    for name, p in text_encoder.named_parameters():
        on = ("all" in groups or ("mlp" in groups and ".mlp." in name)
              or ("attention" in groups and ".self_attn." in name)
              or ("last_attention" in groups and last in name)
              or ("embeddings" in groups and "embeddings." in name))
        p.requires_grad_(on)
        count += on
    return count


class _Items(Dataset):
    def __init__(self, items: list[dict[str, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def _tokens(tokenizer: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    return dict(tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                          truncation=True, return_tensors="pt"))


class StackCollator:
    """Paired items -> ``{"forget": {k: stacked}, "retain": {k: stacked}}``."""

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, dict[str, torch.Tensor]]:
        out = {"forget": {k: torch.stack([it["forget"][k] for it in items])
                          for k in items[0]["forget"]}}
        if all("retain" in it for it in items):
            out["retain"] = {k: torch.stack([it["retain"][k] for it in items])
                             for k in items[0]["retain"]}
        return out


class ConceptEraseLoss:
    """Forget: -denoising loss (and/or the ESD term); retain: MSE of retain embeddings to the
    original encoder's. ``model`` is the text encoder; ``ref_model`` the frozen original."""

    def __init__(self, config: TextEncoderConfig, unet: Any, scheduler: Any,
                 uncond_ids: torch.Tensor) -> None:
        self.config, self.unet, self.scheduler, self.uncond_ids = config, unet, scheduler, uncond_ids

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if ref_model is None:
            raise InvalidInputError("text_encoder needs the original text encoder as reference")
        cfg, f = self.config, batch["forget"]
        x0 = f["latents"]
        dev = x0.device
        self.unet.to(dev)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(x0),), device=dev)
        xt = self.scheduler.add_noise(x0, noise, t)
        cond = model(f["input_ids"])[0]
        pred = self.unet(xt, t, cond).sample
        parts: dict[str, float] = {}
        loss = torch.zeros((), device=dev)
        if cfg.objective in ("denoise", "both"):
            denoise = torch.nn.functional.mse_loss(pred, noise)
            loss = loss - denoise
            parts["denoise"] = float(denoise.detach())
        if cfg.objective in ("esd", "both"):
            with torch.no_grad():
                e_c = self.unet(xt, t, ref_model(f["input_ids"])[0]).sample
                un = ref_model(self.uncond_ids.to(dev))[0].expand(len(x0), -1, -1)
                e_u = self.unet(xt, t, un).sample
                target = e_u - cfg.negative_guidance * (e_c - e_u)
            esd = torch.nn.functional.mse_loss(pred, target)
            loss = loss + cfg.esd_weight * esd
            parts["esd"] = float(esd.detach())
        if "retain" in batch and cfg.retain_weight > 0:
            ids = batch["retain"]["input_ids"]
            with torch.no_grad():
                ref = ref_model(ids)[0]
            keep = torch.nn.functional.mse_loss(model(ids)[0], ref)
            loss = loss + cfg.retain_weight * keep
            parts["retain"] = float(keep.detach())
        return loss, parts


def loss_gap_criterion(unet: Any, scheduler: Any, tokenizer: Any, latents: torch.Tensor,
                       concept_prompts: list[str], unrelated: list[str], margin: float,
                       seed: int = 0):
    """Holds when the concept prompts denoise ``latents`` no better than unrelated prompts
    (fixed noise and timesteps, so the check is deterministic)."""
    gen = torch.Generator().manual_seed(seed + 7)
    reps = max(1, 32 // len(latents))
    x0 = latents.repeat(reps, 1, 1, 1)
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.linspace(50, scheduler.config.num_train_timesteps - 50, len(x0)).long()
    xt = scheduler.add_noise(x0, noise, t)
    c_ids = _tokens(tokenizer, [concept_prompts[i % len(concept_prompts)] for i in range(len(x0))])
    u_ids = _tokens(tokenizer, [unrelated[i % len(unrelated)] for i in range(len(x0))])

    @torch.no_grad()
    def loss(te: torch.nn.Module, ids: dict) -> float:
        dev = next(te.parameters()).device
        unet.to(dev)
        pred = unet(xt.to(dev), t.to(dev), te(ids["input_ids"].to(dev))[0]).sample
        return float(torch.nn.functional.mse_loss(pred, noise.to(dev)))

    def check(te: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        lc, lu = loss(te, c_ids), loss(te, u_ids)
        return lc >= (1 + margin) * lu, {"loss_concept": lc, "loss_unrelated": lu}

    return check


class TextEncoderErasure(Method):
    """Concept erasure by fine-tuning the text encoder of a diffusers pipeline."""

    name = "text_encoder"
    modality = "diffusion"
    config_class = TextEncoderConfig
    guarantee = GUARANTEE

    def run(self, *, model: Any, tokenizer: Any, forget: Any, retain: Any,
            config: MethodConfig | None = None) -> UnlearnResult:
        """``model``: a Stable-Diffusion-style pipeline; ``forget``: a
        :class:`forget.diffusion.concepts.ConceptSet`; ``retain``: prompts (``.texts()``)."""
        from forget.diffusion import require_diffusers

        require_diffusers()
        cfg = self.check_config(config)
        pipe = model
        if not all(hasattr(pipe, a) for a in ("text_encoder", "unet", "vae", "scheduler")):
            raise InvalidInputError(
                "text_encoder erases concepts from diffusion pipelines: give a "
                "StableDiffusionPipeline (text_encoder, unet, vae, scheduler), not a language model")
        if not hasattr(forget, "concept") or not forget.prompts:
            raise InvalidInputError("the forget set must be a ConceptSet with concept prompts")
        tok = tokenizer or pipe.tokenizer
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        flags = {n: [p.requires_grad for p in getattr(pipe, n).parameters()]
                 for n in ("text_encoder", "unet", "vae")}
        try:
            out, shots = self._train(pipe, tok, forget, retain, cfg)
        finally:  # the original pipeline's modules get their flags back
            for n, fl in flags.items():
                for p, f in zip(getattr(pipe, n).parameters(), fl, strict=True):
                    p.requires_grad_(f)
        parts = dict(pipe.components) | {"text_encoder": out.model}
        extra = {"requires_safety_checker": False} if "safety_checker" in parts else {}
        new = type(pipe)(**parts, **extra)
        new.set_progress_bar_config(disable=True)
        history = out.history + [{"mode": "few-shot" if shots else "zero-shot", "images": shots}]
        return UnlearnResult(
            model=new, method=self.name, steps=out.steps, tokens_processed=out.tokens_processed,
            wall_time_s=time.perf_counter() - t0, config=cfg.to_dict(),
            config_hash=cfg.config_hash(), guarantee=self.guarantee, stopped_by=out.stopped_by,
            history=history)

    def _train(self, pipe: Any, tok: Any, forget: Any, retain: Any, cfg: TextEncoderConfig):
        from audits.concept import generate

        pipe.unet.requires_grad_(False)
        pipe.vae.requires_grad_(False)
        original = pipe.text_encoder
        student = copy.deepcopy(original)
        student.train()
        select_parameters(student, tuple(cfg.train_layers))
        vae = pipe.vae
        sf = vae.config.scaling_factor
        shots = 0 if forget.images is None else len(forget.images)
        with torch.no_grad():
            if shots:
                x = forget.images.to(vae.device, vae.dtype) * 2 - 1
                latents = vae.encode(x).latent_dist.mean.cpu() * sf
                prompts = list(forget.image_prompts)
                check_latents = latents
            else:  # zero-shot: random latents train; the original's own images check
                size = pipe.unet.config.sample_size
                gen = torch.Generator().manual_seed(cfg.seed)
                n = cfg.zero_shot_images
                latents = torch.randn((n, pipe.unet.config.in_channels, size, size), generator=gen)
                prompts = [forget.prompts[i % len(forget.prompts)] for i in range(n)]
                made = generate(pipe, prompts[:8], seed=cfg.seed)
                check_latents = vae.encode(made.to(vae.device, vae.dtype) * 2 - 1
                                           ).latent_dist.mean.cpu() * sf
        ids = _tokens(tok, prompts)
        items = [{"input_ids": ids["input_ids"][i], "attention_mask": ids["attention_mask"][i],
                  "latents": latents[i]} for i in range(len(latents))]
        kept = retain.texts() if retain is not None else []
        r_ids = _tokens(tok, kept) if kept else None
        r_items = [{"input_ids": r_ids["input_ids"][i], "attention_mask": r_ids["attention_mask"][i]}
                   for i in range(len(kept))] if r_ids else []
        unrelated = list(forget.unrelated) or kept
        if not unrelated:
            raise InvalidInputError("give unrelated or retain prompts: the stop criterion "
                                    "compares the concept prompts with them")
        check_prompts = prompts[:len(check_latents)] if shots else prompts[:8]
        criterion = loss_gap_criterion(pipe.unet, pipe.scheduler, tok, check_latents,
                                       check_prompts, unrelated, cfg.stop_margin, cfg.seed)
        loss = ConceptEraseLoss(cfg, pipe.unet, pipe.scheduler, _tokens(tok, [""])["input_ids"])
        spec = TrainSpec(cfg.max_steps, cfg.learning_rate, cfg.batch_size, cfg.check_every,
                         cfg.seed)
        out = run_unlearning(student, None, _Items(items), _Items(r_items) if r_items else None,
                             loss, spec, ref_model=original, criterion=criterion,
                             collator=StackCollator())
        out.model.requires_grad_(False)
        return out, shots


METHODS.register("text_encoder", TextEncoderErasure)

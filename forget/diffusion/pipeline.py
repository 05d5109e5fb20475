"""The tiny Stable-Diffusion-style pipeline: built from configs, trained on the shapes world.

Components (all real diffusers / transformers classes, saved and loaded with
``save_pretrained`` / ``StableDiffusionPipeline.from_pretrained``):

- tokenizer: the suite's byte-level BPE tokenizer, trained on the captions (8 tokens max);
- text encoder: ``CLIPTextModel``, 2 layers, width 32;
- VAE: ``AutoencoderKL`` with two blocks (16x16 images -> 4x8x8 latents), trained first as a
  plain autoencoder, its ``scaling_factor`` set to 1/std of the latents;
- UNet: ``UNet2DConditionModel``, a plain block at 8x8 and a cross-attention block at 4x4
  (32, 64 channels; attention at 8x8 costs 5x the step time here), trained jointly with the
  text encoder on the latents, the caption dropped 10% of the time so classifier-free
  guidance works;
- scheduler: ``DDIMScheduler`` (cosine betas), used both to add noise and to sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from forget.diffusion import require_diffusers
from forget.diffusion.shapes import ShapesSpec, dataset

MAX_TOKENS = 8  # "<s> a red circle" is 4 tokens; the rest is padding
WIDTH = 32  # text hidden size = the UNet's cross-attention width


@dataclass
class TrainSettings:
    """Steps and rates of the tiny pipeline's training (defaults: ~1 minute on 2 cores)."""

    vae_steps: int = 200
    unet_steps: int = 600
    batch_size: int = 32
    per_caption: int = 48
    learning_rate: float = 2e-3
    cfg_dropout: float = 0.1
    seed: int = 0


def make_tokenizer(spec: ShapesSpec):
    """The suite's tokenizer trained on the captions (and the empty prompt)."""
    from forget.models.tokenizer import train_tokenizer

    tok = train_tokenizer(spec.captions() * 4, vocab_size=300)
    tok.model_max_length = MAX_TOKENS
    return tok


def build_components(spec: ShapesSpec, tokenizer) -> dict:
    """Untrained components from configs (text encoder, VAE, UNet, scheduler)."""
    d = require_diffusers()
    from transformers import CLIPTextConfig, CLIPTextModel

    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=WIDTH, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_TOKENS * 2,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, projection_dim=WIDTH))
    vae = d.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32), layers_per_block=1,
        latent_channels=4, norm_num_groups=8, sample_size=spec.size, mid_block_add_attention=False)
    unet = d.UNet2DConditionModel(
        sample_size=spec.size // 2, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=WIDTH,
        attention_head_dim=8, norm_num_groups=8)
    scheduler = d.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"text_encoder": text_encoder, "vae": vae, "unet": unet, "scheduler": scheduler}


def assemble(components: dict, tokenizer):
    """A ``StableDiffusionPipeline`` of these parts (no safety checker or feature extractor)."""
    d = require_diffusers()
    pipe = d.StableDiffusionPipeline(
        vae=components["vae"], text_encoder=components["text_encoder"], tokenizer=tokenizer,
        unet=components["unet"], scheduler=components["scheduler"], safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def encode_prompts(text_encoder, tokenizer, prompts: list[str]) -> torch.Tensor:
    """Prompt embeddings (B, T, WIDTH) as the pipeline computes them (padded to max length)."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


def train_vae(vae, images: torch.Tensor, settings: TrainSettings) -> float:
    """Autoencoder training (MSE + a small KL); returns the last reconstruction MSE."""
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=settings.learning_rate)
    vae.train()
    mse = float("nan")
    for _ in range(settings.vae_steps):
        x = images[torch.randint(0, len(images), (settings.batch_size,), generator=gen)] * 2 - 1
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gen)).sample
        loss = torch.nn.functional.mse_loss(rec, x)
        mse = float(loss.detach())
        loss = loss + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval().requires_grad_(False)
    return mse


@torch.no_grad()
def encode_images(vae, images: torch.Tensor) -> torch.Tensor:
    """Latents (N, 4, S/2, S/2) of images in [0, 1], scaled by the VAE's ``scaling_factor``."""
    out = [vae.encode(images[i:i + 256].to(vae.device) * 2 - 1).latent_dist.mean
           for i in range(0, len(images), 256)]
    return torch.cat(out) * vae.config.scaling_factor


def train_denoiser(parts: dict, tokenizer, latents: torch.Tensor, captions: list[str],
                   settings: TrainSettings) -> float:
    """Joint UNet + text encoder training on the latents; returns the last loss."""
    unet, te, sched = parts["unet"], parts["text_encoder"], parts["scheduler"]
    gen = torch.Generator().manual_seed(settings.seed + 1)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    unet.train()
    te.train()
    last = float("nan")
    for _ in range(settings.unet_steps):
        idx = torch.randint(0, len(latents), (settings.batch_size,), generator=gen)
        drop = torch.rand(settings.batch_size, generator=gen) < settings.cfg_dropout
        texts = ["" if dr else captions[int(i)] for i, dr in zip(idx, drop, strict=True)]
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), generator=gen)
        pred = unet(sched.add_noise(x0, noise, t), t, encode_prompts(te, tokenizer, texts)).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        last = float(loss.detach())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    unet.eval().requires_grad_(False)
    te.eval().requires_grad_(False)
    return last


def train_pipeline(spec: ShapesSpec, settings: TrainSettings | None = None):
    """Build and train the tiny pipeline; returns ``(pipeline, figures)``."""
    settings = settings or TrainSettings()
    torch.manual_seed(settings.seed)
    t0 = time.perf_counter()
    tok = make_tokenizer(spec)
    parts = build_components(spec, tok)
    images, captions = dataset(spec, settings.per_caption)
    vae_mse = train_vae(parts["vae"], images, settings)
    raw = encode_images(parts["vae"], images) / parts["vae"].config.scaling_factor
    parts["vae"].register_to_config(scaling_factor=float(1.0 / raw.std()))
    t_vae = time.perf_counter() - t0
    loss = train_denoiser(parts, tok, encode_images(parts["vae"], images), captions, settings)
    figures = {"vae_mse": round(vae_mse, 5), "denoise_loss": round(loss, 4),
               "vae_s": round(t_vae, 1), "train_s": round(time.perf_counter() - t0, 1)}
    return assemble(parts, tok), figures

"""Benchmark: concept erasure in the text encoder vs fine-tuning the UNet with the ESD loss.

Builds the tiny shapes-world pipeline (or loads one), erases the concept "red" few-shot
(8 images) with ``text_encoder`` (with and without its retain term), then fine-tunes a copy of
the UNet with the ESD loss (Gandikota et al. 2023: negative guidance from the frozen original,
cross-attention and all other UNet weights trained) on the same images until the concept score
reaches the level the text encoder reached (checked every ``--check-every`` steps by generating;
the checks are not counted in the UNet's time, which favours the baseline). Reports wall time
(target: text encoder >= 10x faster), steps, concept scores and retain damage for both, and
the textual-inversion circumvention figure, and the same erasure zero-shot (random latents
in place of the 8 images). Writes ``bench/results/text_encoder.json``.

    python bench/text_encoder.py [--root DIR] [--out bench/results/text_encoder.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from forget._env import configure_offline

TARGET_SPEEDUP = 10.0
CONCEPT = "red"


def esd_unet(pipe, fset, scorer, target: float, *, max_steps: int, check_every: int,
             lr: float, eta: float, seed: int = 0):
    """Fine-tune a copy of the UNet with the ESD loss until the concept score <= target."""
    from audits.concept import generate
    from forget.diffusion.pipeline import encode_images, encode_prompts

    torch.manual_seed(seed)
    frozen, student = pipe.unet, copy.deepcopy(pipe.unet)
    student.requires_grad_(True).train()
    latents = encode_images(pipe.vae, fset.images)
    with torch.no_grad():
        cond = encode_prompts(pipe.text_encoder, pipe.tokenizer, list(fset.image_prompts))
        uncond = encode_prompts(pipe.text_encoder, pipe.tokenizer, [""]).expand_as(cond)
    opt = torch.optim.AdamW(student.parameters(), lr=lr)
    sched = pipe.scheduler
    parts = dict(pipe.components) | {"unet": student}
    erased = type(pipe)(**parts, requires_safety_checker=False)
    erased.set_progress_bar_config(disable=True)
    train_s, step, score = 0.0, 0, float("nan")
    prompts = [p for p in fset.prompts for _ in range(4)]
    while step < max_steps:
        t0 = time.perf_counter()
        for _ in range(check_every):
            noise = torch.randn_like(latents)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(latents),))
            xt = sched.add_noise(latents, noise, t)
            with torch.no_grad():
                e_c, e_u = frozen(xt, t, cond).sample, frozen(xt, t, uncond).sample
                goal = e_u - eta * (e_c - e_u)
            loss = torch.nn.functional.mse_loss(student(xt, t, cond).sample, goal)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        train_s += time.perf_counter() - t0
        student.eval()
        score = float(scorer(generate(erased, prompts, seed=0)).mean())
        student.train()
        if score <= target:
            break
    student.eval().requires_grad_(False)
    return erased, {"wall_time_s": round(train_s, 2), "steps": step, "reached": score <= target,
                    "concept_score_at_stop": round(score, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=None, help="a build_tiny folder (else build one)")
    ap.add_argument("--out", default="bench/results/text_encoder.json")
    ap.add_argument("--unet-max-steps", type=int, default=6000)  # 2000 fell short once
    ap.add_argument("--check-every", type=int, default=25)
    ap.add_argument("--unet-lr", type=float, default=1e-3)  # 1e-4 missed it in 2000 steps
    args = ap.parse_args()
    configure_offline()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    from audits.concept import ConceptAuditConfig, concept_audit
    from forget.core import get_method
    from forget.diffusion.classifier import ConceptClassifier
    from forget.diffusion.concepts import build_tiny, concept_sets, read_world, retain_concepts
    from forget.diffusion.io import load_pipeline
    from forget.methods.text_encoder import TextEncoderConfig

    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="bench-te-"))
    built = None
    if not (root / "pipeline").is_dir():
        built = build_tiny(root)
        print(f"[bench] built the tiny pipeline in {built['build_s']} s", flush=True)
    pipe = load_pipeline(root / "pipeline")
    spec, clf = read_world(root / "data"), ConceptClassifier.load(root / "data" / "classifier")
    fset, rset = concept_sets(spec, CONCEPT, shots=8)
    retain = {w: (clf.scorer(w), ps) for w, ps in retain_concepts(spec, CONCEPT).items()}

    def audit(erased, ti: bool):
        cfg = ConceptAuditConfig(ti_steps=150 if ti else 0, ti_control=ti)
        return concept_audit(original=pipe, erased=erased, scorer=clf.scorer(CONCEPT),
                             concept=CONCEPT, concept_prompts=fset.prompts,
                             unrelated_prompts=fset.unrelated, retain=retain,
                             concept_images=fset.images if ti else None,
                             ti_prompts=[p.replace(CONCEPT, "{}") for p in fset.image_prompts],
                             config=cfg).to_dict()

    rows = {}
    for name, cfg in (("text_encoder", TextEncoderConfig()),
                      ("text_encoder_no_retain", TextEncoderConfig(retain_weight=0.0))):
        res = get_method("text_encoder").run(model=pipe, tokenizer=None, forget=fset,
                                             retain=rset, config=cfg)
        rep = audit(res.model, ti=name == "text_encoder")
        rows[name] = {"wall_time_s": round(res.wall_time_s, 2), "steps": res.steps,
                      "stopped_by": res.stopped_by, "scores": rep["scores"],
                      "retain": rep["retain"], "similarity": rep["similarity"],
                      "verdict": rep["verdict"], "circumvention": rep["circumvention"],
                      "config_hash": res.config_hash}
        print(f"[bench] {name}: {rows[name]}", flush=True)
    # zero-shot: no image of the concept, random latents stand in (the same audit, no TI probe)
    zset, _ = concept_sets(spec, CONCEPT, shots=0)
    res = get_method("text_encoder").run(model=pipe, tokenizer=None, forget=zset, retain=rset,
                                         config=TextEncoderConfig())
    rep = audit(res.model, ti=False)
    rows["text_encoder_zero_shot"] = {
        "wall_time_s": round(res.wall_time_s, 2), "steps": res.steps,
        "stopped_by": res.stopped_by, "scores": rep["scores"], "retain": rep["retain"],
        "similarity": rep["similarity"], "verdict": rep["verdict"],
        "config_hash": res.config_hash}
    print(f"[bench] text_encoder_zero_shot: {rows['text_encoder_zero_shot']}", flush=True)
    te = rows["text_encoder"]
    target = te["scores"]["unrelated_after"] + ConceptAuditConfig().erase_margin
    erased, info = esd_unet(pipe, fset, clf.scorer(CONCEPT), target,
                            max_steps=args.unet_max_steps, check_every=args.check_every,
                            lr=args.unet_lr, eta=1.0)
    rep = audit(erased, ti=False)
    rows["esd_unet"] = info | {"scores": rep["scores"], "retain": rep["retain"],
                               "verdict": rep["verdict"], "lr": args.unet_lr, "eta": 1.0}
    print(f"[bench] esd_unet: {rows['esd_unet']}", flush=True)
    speedup = info["wall_time_s"] / te["wall_time_s"]
    out = {
        "benchmark": "concept erasure: text encoder vs UNet fine-tuning with the ESD loss",
        "concept": CONCEPT, "shots": 8, "concept_score_target": round(target, 4),
        "speedup_vs_esd_unet": round(speedup, 2),
        "target": f">= {TARGET_SPEEDUP:.0f}x faster than ESD on the UNet to the same score",
        "meets_target": bool(info["reached"] and speedup >= TARGET_SPEEDUP),
        "pipeline_build_s": built["build_s"] if built else None,
        "prompt_match": built["prompt_match"] if built else None,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "results": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()

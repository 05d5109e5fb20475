"""Concept forget/retain sets and the tiny world's data directory.

A concept erasure request names a concept (a word); its forget set is the prompts that contain
the word, with a few images of it (few-shot) or none (zero-shot), and prompts without it
(the level an unrelated prompt reaches); its retain set is the other prompts, whose text
embeddings must stay where they were.

``build_tiny(root)`` writes everything a concept request needs::

    root/pipeline/           the trained tiny StableDiffusionPipeline + forget_model.json
    root/data/concepts.json  the world (colours, shapes, size, seed) and its captions
    root/data/classifier/    the concept classifier
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from forget.diffusion.shapes import ShapesSpec, concept_images, parse_caption
from forget.errors import DataNotFoundError, InvalidInputError

CONCEPTS_FILE = "concepts.json"


@dataclass
class ConceptSet:
    """What to erase: the concept word, its prompts, few-shot images (or None: zero-shot).

    Attributes:
        images: (N, 3, S, S) in [0, 1]; ``image_prompts[i]`` is image i's prompt (default:
            the prompts in turn).
        unrelated: prompts without the concept (stop criterion and audit reference).
    """

    concept: str
    prompts: list[str]
    images: torch.Tensor | None = None
    image_prompts: list[str] | None = None
    unrelated: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.prompts:
            raise InvalidInputError("no prompt names the requested concept (not named here: it may "
                                    "be personal data); check the concept data folder")
        if self.images is not None and self.image_prompts is None:
            self.image_prompts = [self.prompts[i % len(self.prompts)] for i in range(len(self.images))]
        if self.images is not None and len(self.image_prompts or ()) != len(self.images):
            raise InvalidInputError("give one prompt per concept image")

    def texts(self) -> list[str]:
        return list(self.prompts)


@dataclass
class PromptSet:
    """What to keep: prompts whose embeddings must stay close to the original's."""

    prompts: list[str]

    def texts(self) -> list[str]:
        return list(self.prompts)


def concept_sets(spec: ShapesSpec, concept: str, *, shots: int = 8, seed: int = 1
                 ) -> tuple[ConceptSet, PromptSet]:
    """Forget = captions with ``concept`` (+ ``shots`` images; 0 = zero-shot); retain = the rest."""
    caps = spec.captions()
    mine = [c for c in caps if concept in c.split()]
    if not mine:
        raise InvalidInputError(
            f"no caption of this world names {concept!r}; concepts: "
            f"{', '.join(spec.colours + spec.shapes)}")
    others = [c for c in caps if c not in mine]
    images = concept_images(spec, concept, shots, seed=seed) if shots else None
    prompts = [mine[i % len(mine)] for i in range(shots)] if shots else None
    return ConceptSet(concept, mine, images, prompts, others), PromptSet(others)


def retain_concepts(spec: ShapesSpec, concept: str) -> dict[str, list[str]]:
    """Every other concept of the same kind (colour or shape) with its prompts: the concepts
    whose scores must hold."""
    group = spec.colours if concept in spec.colours else spec.shapes
    caps = spec.captions()
    return {w: [c for c in caps if w in c.split() and concept not in c.split()]
            for w in group if w != concept}


def write_world(data_dir: Path | str, spec: ShapesSpec) -> Path:
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    body = {"world": "shapes", "spec": spec.to_dict(), "captions": spec.captions()}
    (data_dir / CONCEPTS_FILE).write_text(json.dumps(body, indent=2) + "\n")
    return data_dir


def read_world(data_dir: Path | str) -> ShapesSpec:
    path = Path(data_dir) / CONCEPTS_FILE
    if not path.is_file():
        raise DataNotFoundError(f"{data_dir} holds no {CONCEPTS_FILE}: it is not a concept data "
                                "folder; build one with forget.diffusion.build_tiny(ROOT)")
    return ShapesSpec.from_dict(json.loads(path.read_text())["spec"])


def concept_of(spec: ShapesSpec, text: str) -> str | None:
    """The world's concept named by ``text`` (one word, any case), or None."""
    word = " ".join(text.casefold().split())
    return word if word in spec.colours + spec.shapes else None


def build_tiny(root: Path | str, spec: ShapesSpec | None = None, settings=None) -> dict:
    """Train the tiny pipeline and classifier and write them under ``root`` (see above)."""
    from forget.diffusion.classifier import train_classifier
    from forget.diffusion.io import save_pipeline
    from forget.diffusion.pipeline import train_pipeline
    from forget.models.registry import new_card

    spec = spec or ShapesSpec()
    root = Path(root)
    t0 = time.perf_counter()
    clf, acc = train_classifier(spec)
    pipe, figures = train_pipeline(spec, settings)
    card = new_card(kind="trained", size="tiny-diffusion", modality="diffusion",
                    world=spec.to_dict(), train_wall_s=figures["train_s"], figures=figures)
    save_pipeline(pipe, root / "pipeline", card=card)
    write_world(root / "data", spec)
    clf.save(root / "data" / "classifier")
    # generated images match their prompts: the classifier's colour and shape both agree
    from audits.concept import generate

    caps = spec.captions()
    images = generate(pipe, caps * 4, seed=0)
    match = [float(clf.prob(images[i:i + 1], parse_caption(c)[0]) > 0.5
                   and clf.prob(images[i:i + 1], parse_caption(c)[1]) > 0.5)
             for i, c in enumerate(caps * 4)]
    return {"root": root, "pipeline": root / "pipeline", "data": root / "data", "spec": spec,
            "pipe": pipe, "classifier": clf, "classifier_accuracy": acc,
            "prompt_match": sum(match) / len(match), "figures": figures,
            "build_s": round(time.perf_counter() - t0, 1)}

"""Synthetic concept images: coloured shapes on a dark background, and their captions.

Every caption is ``"a {colour} {shape}"``, so a concept is one word (a colour or a shape) and
its prompts are the captions that contain it. Images are ``(3, S, S)`` float tensors in
``[0, 1]``; the shape's position, size and shade jitter so a classifier trained on them
generalises to generated images. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from forget.errors import InvalidInputError

PALETTE = {  # RGB in [0, 1]; no mixed colour (yellow = red + green would blur the concepts)
    "red": (0.9, 0.1, 0.1), "green": (0.1, 0.85, 0.1), "blue": (0.15, 0.2, 0.95),
}
NEUTRAL = ((0.85, 0.85, 0.85), (0.5, 0.5, 0.5))  # "none of the colours": white, grey
SHAPES = ("circle", "square", "triangle")
NONE = "none"


@dataclass(frozen=True)
class ShapesSpec:
    """The synthetic world: its colours, shapes, image size and seed."""

    colours: tuple[str, ...] = tuple(PALETTE)
    shapes: tuple[str, ...] = SHAPES
    size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [c for c in self.colours if c not in PALETTE] + [s for s in self.shapes
                                                                if s not in SHAPES]
        if bad:
            raise InvalidInputError(f"unknown colour/shape {bad}; known: {list(PALETTE)}, "
                                    f"{list(SHAPES)}")
        if self.size < 8:
            raise InvalidInputError(f"image size must be at least 8 pixels, got {self.size}")

    def captions(self) -> list[str]:
        return [caption(c, s) for c in self.colours for s in self.shapes]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ShapesSpec:
        return cls(tuple(d["colours"]), tuple(d["shapes"]), int(d["size"]), int(d["seed"]))


def caption(colour: str, shape: str) -> str:
    return f"a {colour} {shape}"


def parse_caption(text: str) -> tuple[str, str]:
    """``"a red circle"`` -> ``("red", "circle")``."""
    words = text.split()
    if len(words) != 3 or words[0] != "a":
        raise InvalidInputError(f"not a shapes caption: expected 'a <colour> <shape>', got {text!r}")
    return words[1], words[2]


def _mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if shape == "square":
        return (np.abs(xx - cx) <= r * 0.85) & (np.abs(yy - cy) <= r * 0.85)
    # triangle, apex up: inside when below the apex and within the widening sides
    top, bottom = cy - r, cy + r * 0.8
    half = (yy - top) / (bottom - top) * r
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half)


def render(colour: str | tuple[float, float, float], shape: str | None, size: int,
           rng: np.random.Generator) -> torch.Tensor:
    """One image (3, size, size): ``shape`` in ``colour`` (a name or RGB) on a dark background;
    ``shape=None`` gives the background alone."""
    bg = rng.uniform(0.0, 0.12)
    img = np.full((size, size, 3), bg, dtype=np.float32)
    if shape is not None:
        rgb = np.array(PALETTE[colour] if isinstance(colour, str) else colour, dtype=np.float32)
        rgb = np.clip(rgb + rng.normal(0, 0.04, 3), 0, 1)
        r = size * rng.uniform(0.26, 0.36)
        cx, cy = size / 2 + rng.uniform(-1.5, 1.5), size / 2 + rng.uniform(-1.5, 1.5)
        img[_mask(shape, size, cx, cy, r)] = rgb
    img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)
    return torch.from_numpy(img.transpose(2, 0, 1).copy())


def dataset(spec: ShapesSpec, per_caption: int, *, seed: int | None = None
            ) -> tuple[torch.Tensor, list[str]]:
    """``per_caption`` images of every caption: images (N, 3, S, S) and their captions."""
    rng = np.random.default_rng(spec.seed if seed is None else seed)
    images, texts = [], []
    for text in spec.captions():
        colour, shape = parse_caption(text)
        for _ in range(per_caption):
            images.append(render(colour, shape, spec.size, rng))
            texts.append(text)
    return torch.stack(images), texts


def concept_images(spec: ShapesSpec, concept: str, n: int, *, seed: int = 1) -> torch.Tensor:
    """``n`` images of the concept (few-shot examples), cycling over its captions."""
    texts = [t for t in spec.captions() if concept in t.split()]
    if not texts:
        raise InvalidInputError(f"{concept!r} is not a colour or shape of this world")
    rng = np.random.default_rng(seed)
    return torch.stack([render(*parse_caption(texts[i % len(texts)]), spec.size, rng)
                        for i in range(n)])


def neutral_images(spec: ShapesSpec, n: int, rng: np.random.Generator
                   ) -> tuple[torch.Tensor, list[str | None]]:
    """Images of no colour of the palette (white/grey shapes, noise, empty background) and
    the shape they show (None when none): the classifier's "none" examples."""
    images, shapes = [], []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            shape = spec.shapes[rng.integers(len(spec.shapes))]
            images.append(render(NEUTRAL[rng.integers(2)], shape, spec.size, rng))
            shapes.append(shape)
        elif kind == 1:
            images.append(render("red", None, spec.size, rng))
            shapes.append(None)
        else:
            noise = torch.from_numpy(rng.uniform(0, 1, (3, spec.size, spec.size)).astype(np.float32))
            images.append(noise * float(rng.uniform(0.2, 1.0)))
            shapes.append(None)
    return torch.stack(images), shapes

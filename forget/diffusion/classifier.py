"""A tiny CNN that tells the synthetic world's concepts apart: one head for the colour, one
for the shape, each with a "none" class (neutral shapes, empty or noisy images), so an image
that shows no concept is not forced onto one. Its probability of a word is the concept score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from forget.diffusion.shapes import NONE, ShapesSpec, dataset, neutral_images, parse_caption
from forget.errors import InvalidInputError, ModelNotFoundError


class ConceptClassifier(nn.Module):
    """Images (B, 3, S, S) in [0, 1] -> colour logits (B, C+1) and shape logits (B, K+1)."""

    def __init__(self, colours: tuple[str, ...], shapes: tuple[str, ...], size: int) -> None:
        super().__init__()
        self.colours, self.shapes, self.size = tuple(colours) + (NONE,), tuple(shapes) + (NONE,), size
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.colour_head = nn.Linear(128, len(self.colours))
        self.shape_head = nn.Linear(128, len(self.shapes))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(images)
        return self.colour_head(h), self.shape_head(h)

    @torch.no_grad()
    def prob(self, images: torch.Tensor, word: str) -> torch.Tensor:
        """P(word) for each image (B,): the concept score of a colour or a shape."""
        self.eval()
        colour, shape = self(images.float().clamp(0, 1))
        if word in self.colours[:-1]:
            return colour.softmax(-1)[:, self.colours.index(word)]
        if word in self.shapes[:-1]:
            return shape.softmax(-1)[:, self.shapes.index(word)]
        raise InvalidInputError(f"the classifier knows no concept {word!r}; known: "
                                f"{', '.join(self.colours[:-1] + self.shapes[:-1])}")

    def scorer(self, word: str):
        """``images -> P(word)``: the plain callable the audits take."""
        return lambda images: self.prob(images, word)

    def save(self, out: Path | str) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), out / "classifier.pt")
        (out / "classifier.json").write_text(json.dumps(
            {"colours": list(self.colours[:-1]), "shapes": list(self.shapes[:-1]),
             "size": self.size}, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, path: Path | str) -> ConceptClassifier:
        path = Path(path)
        if not (path / "classifier.json").is_file():
            raise ModelNotFoundError(f"no concept classifier in {path} (classifier.json missing); "
                                     "build one with forget.diffusion.build_tiny")
        meta = json.loads((path / "classifier.json").read_text())
        net = cls(tuple(meta["colours"]), tuple(meta["shapes"]), int(meta["size"]))
        net.load_state_dict(torch.load(path / "classifier.pt", map_location="cpu",
                                       weights_only=True))
        return net.eval()


def train_classifier(spec: ShapesSpec, *, steps: int = 300, batch_size: int = 64,
                     seed: int = 0) -> tuple[ConceptClassifier, float]:
    """Train on fresh synthetic images (plus "none" examples); returns it and its held-out
    accuracy (both heads right) on new images."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 100)
    images, texts = dataset(spec, 40, seed=seed + 100)
    neutral, neutral_shapes = neutral_images(spec, len(texts) // 3, rng)
    net = ConceptClassifier(spec.colours, spec.shapes, spec.size)
    c_lab = [net.colours.index(parse_caption(t)[0]) for t in texts] + [len(spec.colours)] * len(neutral)
    s_lab = [net.shapes.index(parse_caption(t)[1]) for t in texts] + [
        net.shapes.index(s) if s else len(spec.shapes) for s in neutral_shapes]
    x = torch.cat([images, neutral])
    yc, ys = torch.tensor(c_lab), torch.tensor(s_lab)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        noisy = (x[idx] + 0.05 * torch.randn(x[idx].shape, generator=gen)).clamp(0, 1)
        lc, ls = net(noisy)
        loss = nn.functional.cross_entropy(lc, yc[idx]) + nn.functional.cross_entropy(ls, ys[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    test, test_texts = dataset(spec, 10, seed=seed + 200)
    with torch.no_grad():
        lc, ls = net(test)
    ok = [(net.colours[int(a)], net.shapes[int(b)]) == parse_caption(t)
          for a, b, t in zip(lc.argmax(-1), ls.argmax(-1), test_texts, strict=True)]
    return net, sum(ok) / len(ok)

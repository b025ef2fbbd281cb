"""Render a folder of coloured shapes: a labelled image set from a source kdgan has never used,
for checking that the quality metrics mean something on a user's own folder.

    python scripts/build_shapes.py --out runs/shapes --per-class 500

Four classes (circle, square, triangle, star) as sub-folders of PNGs, 32x32 RGB: each shape
has a random colour, size, position and rotation on a random background colour, drawn at 4x
and downscaled with Lanczos (antialiased edges). The same --seed gives the same files.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star")


def polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3, "star": 10}[kind]
    points = []
    for i in range(corners):
        radius = r * (0.45 if kind == "star" and i % 2 else 1.0)
        a = angle + 2 * math.pi * i / corners
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return points


def render(kind: str, rng: random.Random, size: int = 32, supersample: int = 4) -> Image.Image:
    big = size * supersample
    colour = lambda: tuple(rng.randrange(256) for _ in range(3))  # noqa: E731
    background, fill = colour(), colour()
    while sum(abs(a - b) for a, b in zip(background, fill)) < 150:  # keep the shape visible
        fill = colour()
    img = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.42) * big
    cx, cy = (rng.uniform(r, big - r) for _ in range(2))
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon(polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fill)
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for kind in CLASSES:
        folder = args.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(args.per_class):
            render(kind, rng).save(folder / f"{i:05d}.png")
    print(f"wrote {len(CLASSES) * args.per_class} images in {len(CLASSES)} class folders under {args.out}")


if __name__ == "__main__":
    main()

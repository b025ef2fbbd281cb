"""Rebuild kdgan's embedded `glyphs` dataset from the machine's free fonts.

    apt-get install fonts-dejavu fonts-liberation fonts-noto-core fonts-freefont-ttf \
        fonts-urw-base35 fonts-roboto-unhinted fonts-texgyre
    python scripts/build_glyphs.py --out src/kdgan/data/glyphs.npz

Every face that draws all of 0-9, A-Z, a-z as distinct, non-empty Latin glyphs is rendered
at 32x32 (white on black, uint8), each glyph scaled so that the taller of its width and
height fills 26 px and centred on its ink bounding box. Symbol and math faces, whose letter
codes map to other shapes, are dropped by name; faces that lack Latin glyphs are dropped
because their "glyphs" are all the same .notdef box. The same face shipped in several
formats (urw-base35 as OTF and Type 1) is kept once.
"""

from __future__ import annotations

import argparse
import hashlib
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont, ImageDraw

CHARS = string.digits + string.ascii_uppercase + string.ascii_lowercase  # 62 classes
SIZE = 32
INK = 26  # the longer side of a glyph's ink box, in pixels
FONT_DIRS = ["/usr/share/fonts", "/usr/share/texmf/fonts/opentype/public"]
# Faces whose code points for letters draw symbols, or that are not text faces at all.
EXCLUDE = ("symbol", "dingbat", "d050000l", "math", "emoji", "music", "sign")

LICENSES = {
    "dejavu": "DejaVu fonts licence (Bitstream Vera derivative, free)",
    "liberation": "SIL Open Font License 1.1",
    "noto": "SIL Open Font License 1.1",
    "freefont": "GNU GPL v3 with font exception",
    "urw-base35": "GNU AGPL v3 with font exception (URW++ base 35)",
    "roboto": "Apache License 2.0",
    "tex-gyre": "GUST Font License (LPPL-based, free)",
}


def render(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray | None:
    canvas = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(canvas).text((20, 20), ch, fill=255, font=font)
    box = canvas.getbbox()
    if box is None:
        return None
    glyph = canvas.crop(box)
    w, h = glyph.size
    scale = INK / max(w, h)
    glyph = glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    out = Image.new("L", (SIZE, SIZE), 0)
    out.paste(glyph, ((SIZE - glyph.width) // 2, (SIZE - glyph.height) // 2))
    return np.asarray(out, dtype=np.uint8)


def face_glyphs(path: Path) -> tuple[str, np.ndarray] | None:
    try:
        font = ImageFont.truetype(str(path), 100)
    except OSError:
        return None
    family, style = font.getname()
    name = f"{family} {style}".strip()
    if any(word in name.lower() for word in EXCLUDE):
        return None
    glyphs = [render(font, ch) for ch in CHARS]
    if any(g is None for g in glyphs):
        return None
    # A face without Latin glyphs draws the same .notdef box for every character.
    distinct = {hashlib.sha1(g.tobytes()).hexdigest() for g in glyphs}
    if len(distinct) < len(CHARS) - 2:  # 'l'/'I'/'1' may coincide in some faces
        return None
    return name, np.stack(glyphs)


def licence_of(path: Path) -> str:
    text = str(path).lower()
    return next((lic for key, lic in LICENSES.items() if key in text), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("src/kdgan/data/glyphs.npz"))
    args = parser.parse_args()

    files = sorted(
        p for d in FONT_DIRS for p in Path(d).rglob("*") if p.suffix.lower() in {".ttf", ".otf"}
    )
    names, images, seen = [], [], set()
    licences: dict[str, str] = {}
    for path in files:
        got = face_glyphs(path)
        if got is None:
            continue
        name, glyphs = got
        key = hashlib.sha1(glyphs.tobytes()).hexdigest()
        if name in names or key in seen:
            continue
        seen.add(key)
        names.append(name)
        images.append(glyphs)
        licences[name] = licence_of(path)

    order = np.argsort(names)  # stable font ids whatever order the filesystem lists
    names = [names[i] for i in order]
    images_arr = np.stack([images[i] for i in order])  # (fonts, 62, 32, 32)
    n_fonts = len(names)
    np.savez_compressed(
        args.out,
        images=images_arr.reshape(-1, SIZE, SIZE),
        labels=np.tile(np.arange(len(CHARS)), n_fonts).astype(np.int64),
        font_ids=np.repeat(np.arange(n_fonts), len(CHARS)).astype(np.int64),
        font_names=np.array(names),
        classes=np.array(list(CHARS)),
    )
    notes = args.out.with_name("GLYPHS_FONTS.md")
    lines = [
        "# Fonts in the embedded `glyphs` dataset",
        "",
        f"{n_fonts} faces x {len(CHARS)} characters = {n_fonts * len(CHARS)} images of 32x32,",
        "rendered by `scripts/build_glyphs.py` from Debian's free font packages.",
        "Rendered bitmaps of glyphs are not font software; the licences are listed so",
        "that users can check them for their own use.",
        "",
        "| id | face | licence |",
        "|---|---|---|",
    ]
    lines += [f"| {i} | {n} | {licences[n]} |" for i, n in enumerate(names)]
    notes.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}: {n_fonts} faces, {n_fonts * len(CHARS)} images")


if __name__ == "__main__":
    main()

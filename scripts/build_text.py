"""Build kdgan's embedded parallel text (issue #19) from Debian's public-domain SWORD Bible
modules: verse-aligned English -> Spanish pairs for translation (King James Version ->
Reina-Valera 1909) and King James -> World English Bible pairs for style transfer (archaic ->
modern English).

    python scripts/build_text.py              # installs the modules with apt if they are missing
    python scripts/build_text.py --no-install

Needs (on the build machine only; the shipped package reads the files it writes):
`apt-get install --no-install-recommends libsword-utils sword-text-kjv sword-text-sparv
sword-text-web`. Each module is exported with `mod2imp` (raw OSIS), its footnotes dropped and
its markup removed here; a check then asserts that, whitespace and letter case aside, every
verse is what `mod2imp -s` (SWORD's own markup stripper) gives, less at most a few speaker
labels, so what changes is the spaces that stripper loses where a footnote sat between two
words ("Godcreated").

Writes src/kdgan/data/text/{translation_en_es,style_kjv_web}.tsv.xz (reference, source,
target per line; verses empty in either module are left out) and SOURCES.md with each
module's version and licence as its .conf states them.
"""

from __future__ import annotations

import argparse
import lzma
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "kdgan" / "data" / "text"
MODS = Path("/usr/share/sword/mods.d")
MODULES = {"kjv": ("engKJV2006eb", "sword-text-kjv"), "rv1909": ("spaRV1909eb", "sword-text-sparv"),
           "web": ("engWEB2015eb", "sword-text-web")}
CORPORA = {"translation_en_es": ("kjv", "rv1909"), "style_kjv_web": ("kjv", "web")}

NOTE = re.compile(r"<note\b.*?</note>", re.S)
CANONICAL_TITLE = re.compile(r"<title\b[^>]*canonical=\"true\"[^>]*>(.*?)</title>", re.S)
HEADING = re.compile(r"<(title|speaker)\b.*?</\1>", re.S)  # section headings, the Song's speakers
TAG = re.compile(r"<[^>]*>")
SPACE_BEFORE = re.compile(r"\s+([,.;:!?’”)\]])")
SPACE_AFTER = re.compile(r"([(\[“‘¿¡])\s+")


def ensure_modules(install: bool) -> None:
    missing = [pkg for name, pkg in MODULES.values() if not (MODS / f"{name}.conf").is_file()]
    if shutil.which("mod2imp") is None:
        missing.append("libsword-utils")
    if not missing:
        return
    if not install:
        sys.exit(f"missing Debian packages: {' '.join(missing)} (apt-get install --no-install-recommends ...)")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True)


def export(module: str, strip: bool) -> dict[str, str]:
    """reference ("Genesis 1:1") -> the verse's text as mod2imp exports it."""
    text = subprocess.run(["mod2imp", module, *(["-s"] if strip else [])], capture_output=True, text=True,
                          check=True).stdout
    verses, ref = {}, None
    for line in text.splitlines():
        if line.startswith("$$$"):
            ref = line[3:].strip()
            verses[ref] = ""
        elif ref is not None:
            verses[ref] += line + "\n"
    # chapter and book headings export as verse 0 ("Genesis 1:0") and "[ ... Heading ]"
    return {r: v for r, v in verses.items() if re.fullmatch(r".+ \d+:[1-9]\d*", r)}


def clean(osis: str, psalm_titles: bool = True) -> str:
    """A verse's OSIS as plain text: footnotes and headings dropped, the canonical psalm
    titles kept (Reina-Valera has them as verse text; SWORD's stripper drops them, so the check
    leaves them out), markup removed (a space where an element may have separated words),
    spacing around punctuation restored."""
    if not psalm_titles:
        osis = CANONICAL_TITLE.sub(" ", osis)
    text = NOTE.sub(" ", CANONICAL_TITLE.sub(lambda m: " " + m.group(1) + " ", osis))
    text = HEADING.sub(" ", text)
    text = re.sub(r"</w>\s*<w\b", "</w> <w", text)  # adjacent words keep a space between them
    text = TAG.sub(lambda m: " " if m.group(0).startswith(("<l", "</l", "<lb", "<title", "</title", "<milestone",
                                                           "<div", "</div", "<p", "</p")) else "", text)
    text = " ".join(text.split())
    return SPACE_AFTER.sub(r"\1", SPACE_BEFORE.sub(r"\1", text))


def verses(key: str) -> dict[str, str]:
    module = MODULES[key][0]
    raw = export(module, strip=False)
    ours = {r: clean(v) for r, v in raw.items()}
    theirs = export(module, strip=True)
    # Against SWORD's own stripper, whitespace and case aside (it capitalises some divine names,
    # leaves Strong's numbers of multi-word renderings as "<H2416>" and keeps some of the Song of
    # Solomon's speaker labels): every verse's text must be what it gives, at most less a few labels.
    for ref, osis in raw.items():
        mine = re.sub(r"\s", "", clean(osis, psalm_titles=False)).casefold()
        given = re.sub(r"\s|<[HG]\d+>", "", theirs.get(ref, "")).casefold()
        rest = iter(given)
        if not all(c in rest for c in mine) or len(mine) < 0.9 * len(given):
            sys.exit(f"{module} {ref}: cleaned text differs from mod2imp -s beyond whitespace:\n"
                     f"{clean(osis)}\n{theirs.get(ref)}")
    return {r: t for r, t in ours.items() if t}


def licence(key: str) -> str:
    module, package = MODULES[key]
    conf = (MODS / f"{module}.conf").read_text(encoding="utf-8", errors="replace")
    field = lambda name: (re.search(rf"^{name}=(.*)$", conf, re.M) or [None, "?"])[1].strip()  # noqa: E731
    return (f"- `{module}` (Debian `{package}`): {field('Description')}, version {field('Version')}; "
            f"{field('DistributionLicense')}. {field('CopyrightNotes')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-install", action="store_true", help="fail instead of installing missing packages")
    args = parser.parse_args()
    ensure_modules(not args.no_install)
    texts = {key: verses(key) for key in MODULES}
    OUT.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (source, target) in CORPORA.items():
        refs = [r for r in texts[source] if r in texts[target]]  # the source module's (canonical) order
        lines = "".join(f"{r}\t{texts[source][r]}\t{texts[target][r]}\n" for r in refs)
        assert "\t" not in "".join(texts[source][r] + texts[target][r] for r in refs)
        (OUT / f"{name}.tsv.xz").write_bytes(lzma.compress(lines.encode(), preset=9 | lzma.PRESET_EXTREME))
        counts[name] = len(refs)
        print(f"{name}: {len(refs)} verse pairs, {(OUT / f'{name}.tsv.xz').stat().st_size / 1e6:.2f} MB")
    (OUT / "SOURCES.md").write_text(
        "# Embedded parallel text\n\nBuilt by `scripts/build_text.py` from Debian's SWORD modules, "
        "verse-aligned by reference (reference, source, target per line):\n\n"
        + "".join(f"- `{n}.tsv.xz`: {counts[n]} pairs, {MODULES[s][0]} -> {MODULES[t][0]}\n"
                  for n, (s, t) in CORPORA.items())
        + "\nFootnotes, section headings, the Song of Solomon's speaker labels and all markup are removed; "
          "the verse text itself is unchanged (the World English Bible asks that a changed text not carry "
          "its name). The King James Version's letters patent restrict printing it in the United Kingdom "
          "only; elsewhere it is in the public domain.\n"
        + "\nThe modules and their licences, as their .conf files state them:\n\n"
        + "\n".join(licence(k) for k in MODULES) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Goldens for Vivace's port of Sudachi (`vivace_frontend::japanese::sudachi`),
which pyopenjtalk-plus 0.4.1.post9 asks for the reading of a kanji with
several (`modify_kanji_yomi` → `sudachi_analyze`).

The reference is SudachiPy 0.7.0 with `sudachidict_core` 20261015 (the
versions `pyopenjtalk-plus` installs), split mode C. For each text:
`words` is every word's [surface, reading_form] with SudachiPy's default
configuration less its two path-rewrite plugins (which only join numerals
and katakana, never a lone kanji, and are not ported); `kanji` is what
pyopenjtalk-plus's `sudachi_analyze` keeps, with the default configuration.

    python3 -m venv /tmp/ja9
    /tmp/ja9/bin/pip install pyopenjtalk-plus==0.4.1.post9 piper-tts==1.8.0 \
        sudachipy==0.7.0 sudachidict_core==20261015
    /tmp/ja9/bin/python tools/make_sudachi_goldens.py crates/vivace/tests/fixtures/japanese/sudachi.json
"""

import json
import random
import sys
from importlib import resources

from pyopenjtalk import _MULTI_READ_KANJI_SET_EXCLUDING_NANI as TARGETS
from pyopenjtalk.utils import sudachi_analyze
from sudachipy import Dictionary, SplitMode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from make_mecab_goldens import TEXTS  # noqa: E402
from make_njd_goldens import KANJI, NUMBERS, ODORI, PARAGRAPHS, PHRASES, random_texts  # noqa: E402

def soup(rng, count):
    pool = (
        "あいうえおかきくけこアイウエオカキクケコーッャュョ漢字方中気上下時人一二三十百千万〇々"
        "0123456789０１２３ABCabcＡＢａｂ.,，．!?！？-－ー〜~～()（）「」 　😀👍🏻\u0301\u3099\u200dÅΩЖﾊﾟｶﾞ"
    )
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 25))) for _ in range(count)]


def main():
    default = Dictionary().create(mode=SplitMode.C)
    config = json.loads(resources.files("sudachipy").joinpath("resources/sudachi.json").read_text())
    config["pathRewritePlugin"] = []
    bare = Dictionary(config=json.dumps(config)).create(mode=SplitMode.C)
    rng = random.Random(5)
    written = TEXTS + NUMBERS + PHRASES + ODORI + KANJI + PARAGRAPHS
    # Words of the written texts, joined at random: dictionary words side by side.
    words = sorted({m.surface() for t in written for m in default.tokenize(t)})
    joined = ["".join(rng.choice(words) for _ in range(rng.randint(2, 10))) for _ in range(400)]
    texts = written + random_texts() + soup(rng, 400) + joined
    cases = []
    for text in texts:
        case = {
            "text": text,
            "words": [[m.surface(), m.reading_form()] for m in bare.tokenize(text)],
            "kanji": sudachi_analyze(text, TARGETS),
        }
        cases.append(case)
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write('{"reference": "SudachiPy 0.7.0, sudachidict_core 20261015, split mode C",\n"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    print(f"{len(cases)} texts, {sum(len(c['words']) for c in cases)} words, {sum(len(c['kanji']) for c in cases)} kanji")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Goldens for Chatterbox's multilingual text front end: the reference's
`punc_norm` (`mtl_tts.py`) then `MTLTokenizer.encode(text, language_id)`
(chatterbox-tts 0.1.7) on sentences in 22 of the 23 languages (ja comes with
its own front end). he and ru run as the reference runs without
`dicta_onnx` and `russian_text_stresser`: unchanged, with a warning.

zh runs without spacy-pkuseg (its model is fetched from GitHub, not
reachable; the reference skips segmentation without it) and with a
synthetic `Cangjie5_TC.json` (the real one is on the Hugging Face Hub only):
codes drawn at random for the sentences' glyphs, some shared (so the index
suffix appears), a multi-character word, a glyph listed twice, and a glyph
left out. The table is written into the fixture beside the tokenizer.

The tokenizer file is the real `grapheme_mtl_merged_expanded_v1.json`
(from the sdist of `chatterbox-vllm` 0.2.1, MIT; `pip download --no-deps
--no-binary :all: chatterbox-vllm==0.2.1`), copied into the fixture.

    /tmp/cbenv/bin/python tools/make_mtl_tokenizer_goldens.py --tokenizer PATH/grapheme_mtl_merged_expanded_v1.json
"""

import argparse
import json
import shutil
from pathlib import Path

import chatterbox.models.tokenizers.tokenizer as tok
from chatterbox.mtl_tts import punc_norm

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "crates" / "vivace-frontend" / "tests" / "fixtures" / "chatterbox_mtl"

SENTENCES = {
    "ar": ["مرحبا بكم في فيفاتشي. العدد 42!", "كيف حالك اليوم؟"],
    "da": ["Hej, hvordan har du det? Jeg har 3 katte.", "Æbler og østers på én gang."],
    "de": ["Grüß Gott! Die Straße ist 12,5 km lang.", "Dr. Müller kommt um 9 Uhr – oder nicht?"],
    "el": ["Καλημέρα σας. Πώς είστε σήμερα;", "ΟΔΥΣΣΕΥΣ και Σίσυφος."],
    "en": ["Hello, World! It's 5 o'clock.", "The U.S. costs $3.50: fine…"],
    "es": ["¿Dónde está la estación? Año 2024.", "¡Qué niño tan pequeño!"],
    "fi": ["Hyvää päivää! Äiti söi 7 omenaa.", "Yö on pitkä ja kylmä."],
    "fr": ["Ça va très bien, merci. L'été dernier...", "Œuvre naïve : « bonjour » !"],
    "he": ["שלום עולם, מה שלומך?", "ספר 3 הוא הטוב ביותר."],
    "hi": ["नमस्ते, आप कैसे हैं? मैं ठीक हूँ।", "भारत में 28 राज्य हैं।"],
    "it": ["Perché no? È già l'una.", "Città più bella del mondo!"],
    "ko": ["안녕하세요. 반갑습니다!", "서울은 3월에 따뜻해요."],
    "ms": ["Selamat pagi, apa khabar?", "Saya ada 2 ekor kucing."],
    "nl": ["Goedemorgen! Het is één uur.", "Café 't Hoekje, zo'n 4 km."],
    "no": ["Hei på deg! Blåbærsyltetøy er godt.", "Jeg bor i Tromsø."],
    "pl": ["Zażółć gęślą jaźń. Dzień dobry!", "Mam 15 lat; a ty?"],
    "pt": ["Olá, tudo bem? São três horas.", "A ação começou às 8h."],
    "ru": ["Привет, как дела? Всё хорошо.", "Москва — столица России."],
    "sv": ["Hej då! Smörgåsbord för 2 personer.", "Åtta älgar i skogen."],
    "sw": ["Habari yako? Nzuri sana, asante.", "Nina miaka 30."],
    "tr": ["Günaydın! Işık çok güzel, İstanbul.", "Ağaç ılık bir öğleden sonra."],
    "zh": ["你好，世界！今天天气很好。", "我有3本书，你呢？", "中文和English混合"],
}


# Japanese through pykakasi 2.3.0 (`pip install pykakasi==2.3.0` in the venv):
# okurigana, katakana and prolonged marks, readings that start with は/へ,
# digits and Latin, NFKD-split dakuten, a variant glyph, a variation
# selector, half-width kana, an emoji and a rare kanji outside the dictionary.
JA_SENTENCES = [
    "私は東京へ行きました。",
    "花が咲く季節になりました！",
    "部屋の窓から橋が見える。",
    "コーヒーを飲みたいです。",
    "今日は2024年12月4日、天気は晴れ。",
    "ＡＩとRustで音声合成をします？",
    "学校で勉強しましょう。",
    "髙橋さんは葛\U000E0100飾区に住んでいます。",
    "ｶﾀｶﾅとﾊﾝｶｸ、ｰ長音。",
    "寿司🍣が大好き！",
    "齾a字を書く。",
    "「こんにちは」と言った。",
    "ロシア語でПриветと言います。",
    "東京都庁の展望台へ。",
]


def synthetic_cangjie(out: Path) -> Path:
    """A Cangjie5_TC.json for the zh sentences' glyphs."""
    import random
    import unicodedata
    rng = random.Random(7)
    glyphs = sorted({c for t in SENTENCES["zh"] for c in t if unicodedata.category(c) == "Lo"})
    left_out = glyphs.pop()  # passes through unconverted
    entries = []
    codes = []
    for i, g in enumerate(glyphs):
        if i % 4 == 3:
            code = codes[-1]  # shared with the previous glyph: index suffix 1
        else:
            code = "".join(rng.choice("abcdefghijklmnopqrstuvwxy") for _ in range(rng.randint(1, 5)))
        codes.append(code)
        entries.append(f"{g}\t{code}")
    entries.insert(2, f"{glyphs[0]}{glyphs[1]}\t{codes[3]}")  # a word, counted in indices
    entries.append(f"{glyphs[5]}\t{codes[5]}\tsecond")  # listed twice
    path = out / "Cangjie5_TC.json"
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=0) + "\n")
    print(f"Cangjie table: {len(entries)} entries, {left_out!r} left out")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=FIXTURE)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = synthetic_cangjie(args.out)
    tok.hf_hub_download = lambda repo_id, filename, cache_dir=None: str(table)
    tok.ChineseCangjieConverter._init_segmenter = lambda self: None
    mtl = tok.MTLTokenizer(str(args.tokenizer))
    cases = []
    for lang, texts in SENTENCES.items():
        for text in texts:
            normalized = punc_norm(text)
            cases.append(dict(language=lang, text=text, normalized=normalized,
                              ids=mtl.encode(normalized, language_id=lang)))
    from unicodedata import normalize
    ja = []
    for text in JA_SENTENCES:
        normalized = punc_norm(text)
        ja.append(dict(language="ja", text=text, normalized=normalized,
                       hiragana=tok.hiragana_normalize(normalize("NFKD", normalized.lower())),
                       ids=mtl.encode(normalized, language_id="ja")))
    (args.out / "ja_cases.json").write_text(json.dumps(ja, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(ja)} Japanese sentences")
    shutil.copy(args.tokenizer, args.out / args.tokenizer.name)
    (args.out / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} sentences in {len(SENTENCES)} languages")


if __name__ == "__main__":
    main()

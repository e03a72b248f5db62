#!/usr/bin/env python3
"""Goldens for Kokoro's text pipeline as kokoro-onnx 0.6.1 runs it (docs/KOKORO_TEXT.md):
for sentences in each language, the phonemes, the token ids and the chunks of
long input, from the package's own `Tokenizer` and `Kokoro._prepare` on an
instance built without loading a model (no model download).

    python3 -m venv /tmp/kokoro_venv
    /tmp/kokoro_venv/bin/pip install kokoro-onnx==0.6.1 phonemizer==3.4.0 espeakng-loader==0.2.4
    /tmp/kokoro_venv/bin/python tools/make_kokoro_text_goldens.py OUT.json
"""

import json, sys, importlib.metadata as md
import numpy as np
import phonemizer
from phonemizer.punctuation import Punctuation
from kokoro_onnx import Kokoro
from kokoro_onnx.tokenizer import Tokenizer
from kokoro_onnx.chunker import split_phonemes, pause_after
from kokoro_onnx.config import MAX_PHONEME_LENGTH

tok = Tokenizer()
k = Kokoro.__new__(Kokoro)          # no model needed: only the text path
k.tokenizer = tok
k.voices = {}
dummy_voice = np.arange(510, dtype=np.float32).reshape(510, 1, 1)  # row i holds value i

LONG_EN = ("The quick brown fox jumps over the lazy dog. " * 3 +
    "In 2023, the committee met on March 5th at 10:30 a.m. to discuss the budget, which had grown by 12.5% since 1999; "
    "however, Dr. Smith argued that the figures were misleading, and Mrs. Jones agreed with him! "
    "Would they reach a decision before the deadline? Nobody knew for sure, but everyone hoped so. "
    "Meanwhile, the children played outside, laughing and shouting as the sun slowly set behind the distant hills, "
    "painting the sky in shades of orange, pink and purple that nobody in the village would ever forget.")
LONG_NOPUNCT = " ".join(["supercalifragilisticexpialidocious"] * 20)

CASES = {
 "en-us": ["Hello, world! How are you today?",
           "Dr. Smith paid $3.50 for 2 coffees on Jan. 5th, 2024.",
           "It's 10:30 a.m.; the meeting (in room 42) starts soon\u2026",
           "She said \u201cyes\u201d \u2014 then left. e.g. the U.S.A. and NASA",
           "I have 1,000,000 reasons and 19,99 euros, not 3.14159.",
           "Line one.\nLine two without stop\nLine three!",
           "Hello... world?! \"Quoted\" [brackets] {braces} «guillemets»",
           "A well-known state-of-the-art model, isn't it?",
           "   Leading and trailing spaces.   ",
           "...",
           "Version 2.0 costs 3.50. Call 555-1234 at 9:45 p.m. on 12/25/2024!",
           "Mix of UPPER case, CamelCase and I.B.M. acronyms; St. Louis & Co.",
           "Numbers: 1st 2nd 3rd 4th, 1/2, -7, 100,000 and 0.5%",
           LONG_EN, LONG_NOPUNCT],
 "en-gb": ["Hello, world! How are you today?",
           "Mr. Brown lives at 221B Baker Street, London.",
           "The colour of the tomato was 100% red.",
           "Whether it rains or not, we'll go at 7 o'clock.",
           "Schedule a route via Leicester and Worcester."],
 "es": ["Hola, \u00bfc\u00f3mo est\u00e1s?",
        "\u00a1Qu\u00e9 bonito d\u00eda hace hoy!",
        "Tengo 25 a\u00f1os y vivo en la calle 3.",
        "El Sr. Garc\u00eda pag\u00f3 19,99 euros.",
        "No cuentes los d\u00edas, haz que los d\u00edas cuenten."],
 "fr-fr": ["Bonjour, le monde !",
           "On ne voit bien qu\u2019avec le c\u0153ur. L\u2019essentiel est invisible pour les yeux.",
           "J'ai 42 ans et j'aime le football.",
           "M. Dupont arrive \u00e0 14h30, n'est-ce pas ?",
           "Il co\u00fbte 3,50 \u20ac \u00ab vraiment \u00bb."],
 "hi": ["\u0928\u092e\u0938\u094d\u0924\u0947, \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948\u0902?",
        "\u0938\u092a\u0928\u0947 \u0935\u094b \u0928\u0939\u0940\u0902 \u091c\u094b \u0939\u092e \u0938\u094b\u0924\u0947 \u0938\u092e\u092f \u0926\u0947\u0916\u0924\u0947 \u0939\u0948\u0902, \u0938\u092a\u0928\u0947 \u0935\u094b \u0939\u0948\u0902 \u091c\u094b \u0939\u092e\u0947\u0902 \u0938\u094b\u0928\u0947 \u0928\u0939\u0940\u0902 \u0926\u0947\u0924\u0947\u0964",
        "\u092e\u0947\u0930\u0947 \u092a\u093e\u0938 25 \u0915\u093f\u0924\u093e\u092c\u0947\u0902 \u0939\u0948\u0902\u0964",
        "\u092f\u0939 \u090f\u0915 test \u0939\u0948\u0964",
        "\u0926\u093f\u0932\u094d\u0932\u0940 \u092d\u093e\u0930\u0924 \u0915\u0940 \u0930\u093e\u091c\u0927\u093e\u0928\u0940 \u0939\u0948!"],
 "it": ["Ciao, come stai?",
        "Non sognare la tua vita, vivi il tuo sogno.",
        "Ho 33 anni e abito a Roma.",
        "Il Sig. Rossi ha pagato 12,50 euro!",
        "Perch\u00e9 no? Andiamo al cinema stasera."],
 "pt-br": ["Ol\u00e1, tudo bem?",
           "N\u00e3o sonhe sua vida, viva seu sonho.",
           "Eu tenho 27 anos e moro em S\u00e3o Paulo.",
           "O Sr. Silva pagou R$ 15,75 pelo almo\u00e7o!",
           "A\u00e7\u00e3o, cora\u00e7\u00e3o e p\u00e3o."],
 "ja": ["\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\uff01",
        "\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002",
        "\u4eba\u751f\u3092\u5922\u898b\u308b\u306a\u3002"],
 "cmn": ["\u4f60\u597d\uff0c\u4e16\u754c\uff01",
         "\u5343\u91cc\u4e4b\u884c\uff0c\u59cb\u4e8e\u8db3\u4e0b\u3002",
         "\u6211\u6709 3 \u4e2a\u82f9\u679c."],
 "zh": ["\u4f60\u597d"],
}

out = {"meta": {
    "kokoro_onnx": md.version("kokoro-onnx"), "phonemizer": md.version("phonemizer"),
    "espeakng_loader": md.version("espeakng-loader"),
    "espeak_ng_version": ".".join(map(str, __import__("phonemizer.backend.espeak.wrapper", fromlist=["x"]).EspeakWrapper().version)),
    "max_phoneme_length": MAX_PHONEME_LENGTH,
    "python": sys.version.split()[0],
    "pip_list": {d.metadata["Name"]: d.version for d in md.distributions()},
    "notes": "raw_phonemizer = phonemizer.phonemize(text.strip(), lang, preserve_punctuation=True, with_stress=True) before the vocab filter; "
             "phonemes = Tokenizer.phonemize(text, lang); normalized = ' '.join(phonemes.split()) as in Kokoro._prepare; "
             "batches = Kokoro._prepare(...) output; ids = Tokenizer.tokenize(batch) (no pads); model_input_ids = [0]+ids+[0]; "
             "style_row = index into the (510,1,256) voice array = min(len(ids),510)-1; pause_s = silence appended after the batch when trim=True"},
    "cases": []}

for lang, texts in CASES.items():
    for text in texts:
        rec = {"lang": lang, "text": text}
        try:
            lines = [l.strip("\n") for l in text.strip().strip("\n").split("\n")]
            lines = [l for l in lines if l.strip()]
            chunks, marks = Punctuation(Punctuation.default_marks()).preserve(lines)
            rec["espeak_chunks"] = chunks
            rec["punct_marks"] = [[m.index, m.mark, m.position] for m in marks]
        except Exception as e:
            rec["espeak_chunks_error"] = repr(e)
        try:
            raw = phonemizer.phonemize(tok.normalize_text(text), lang, preserve_punctuation=True, with_stress=True)
            rec["raw_phonemizer"] = raw
            rec["dropped_chars"] = sorted({c for c in raw if c not in tok.vocab})
            ph = tok.phonemize(text, lang)
            rec["phonemes"] = ph
            _, norm, batches = k._prepare(text, dummy_voice, 1.0, lang, False, 0.25, 0.1)
            rec["normalized_phonemes"] = norm
            rec["ids"] = tok.tokenize(norm, limit=None)
            rec["batches"] = []
            for b, pause in batches:
                ids = tok.tokenize(b)
                rec["batches"].append({"phonemes": b, "len": len(b), "ids": ids,
                    "model_input_ids": [0, *ids, 0],
                    "style_row": int(k._style_for(dummy_voice, len(ids)).ravel()[0]),
                    "pause_s": pause})
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {e}"
        out["cases"].append(rec)

json.dump(out, open(sys.argv[1], "w"), ensure_ascii=False, indent=1)
for r in out["cases"]:
    print(r["lang"], "|", r["text"][:60].replace("\n","\\n"))
    print("   RAW:", repr(r.get("raw_phonemizer","")[:300]))
    print("   NRM:", r.get("normalized_phonemes", r.get("error"))[:300])
    print("   DROP:", r.get("dropped_chars"), " batches:", [(b["len"], b["style_row"], b["pause_s"]) for b in r.get("batches", [])])

#!/usr/bin/env python3
"""Goldens for Piper 1.8's Hebrew phonemizer (`phoneme_type: hebrew`):
`piper.phonemize_hebrew.HebrewPhonemizer` restores the points with Nakdimon
(`hebrew/nakdimon.onnx`, run by onnxruntime) unless the text already has
some, then converts to IPA with the rules of `hebrew/hebrew_ipa.py`.

For each text: Nakdimon's input ids and its three heads' argmax (niqqud,
dagesh, sin), the pointed text, and the phonemes (one list: Piper treats
the whole text as one sentence).

Run by hand in a throwaway venv:
    /tmp/piperenv/bin/pip install piper-tts==1.8.0
    /tmp/piperenv/bin/python tools/make_hebrew_goldens.py \\
        > crates/vivace/tests/fixtures/hebrew/goldens.json
"""

import json
import sys

import numpy as np
from piper.hebrew import _CHAR_TO_ID, NakdimonDiacritizer, normalize, remove_niqqud
from piper.phonemize_hebrew import HebrewPhonemizer

TEXTS = [
    "שלום עולם",
    "מה שלומך?",
    "ירושלים היא עיר עתיקה.",
    "אני אוהב לקרוא ספרים",
    "תודה רבה",
    "הילדים הלכו לבית הספר בבוקר.",
    "בשנת 1948 הוקמה המדינה.",
    "ג'ירפה, צ'יפס וז'קט",
    "הוא אמר: \"כן\" – ואז הלך.",
    "ספר חדש על החוף",
    "שָׁלוֹם לְכֻלָּם",
    "בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    "Hello שלום 123",
]


def main() -> None:
    phonemizer = HebrewPhonemizer()
    model = phonemizer.diacritizer
    cases = []
    for text in TEXTS:
        bare = remove_niqqud(text)
        ids = [_CHAR_TO_ID[normalize(c)] for c in bare]
        n, d, s = model.session.run(
            None, {model._input_name: np.array([ids], dtype=np.float32)}
        )
        sentences = phonemizer.phonemize(text)
        cases.append(
            {
                "text": text,
                "input_ids": ids,
                "niqqud": np.argmax(n[0], axis=-1).tolist(),
                "dagesh": np.argmax(d[0], axis=-1).tolist(),
                "sin": np.argmax(s[0], axis=-1).tolist(),
                "niqqud_logits": [round(float(x), 5) for x in n[0].flatten()],
                "pointed": model(text),
                "phonemes": sentences[0] if sentences else [],
            }
        )
    json.dump({"piper_tts": "1.8.0", "cases": cases}, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Goldens for Piper's Thai phonemizer (`phoneme_type: thai`).

The reference is piper-tts 1.8.0's `piper.phonemize_thai.ThaiPhonemizer`
(TLTK 1.10's `th2ipa`, as `piper-tts[th]` pins `tltk<1.11`, and
unicode-rbnf 2.4's Thai number spelling).

TLTK's word segmenter adds every syllable pair it scores to its global
n-gram counts (`compute_colloc`), so its output for a text depends on every
text the process read before. The goldens pin the state of a fresh process:
the counts are restored before each text (checked against a fresh process
for the first texts).

Run by hand in a throwaway environment:

    python3 -m venv /tmp/thenv
    /tmp/thenv/bin/pip install tltk==1.10 "unicode-rbnf>=2.4,<3" "pandas<3" \
        requests onnxruntime pathvalidate
    /tmp/thenv/bin/pip install --no-deps piper-tts==1.8.0
    /tmp/thenv/bin/python tools/make_thai_goldens.py \
        crates/vivace/tests/fixtures/thai/goldens.json

It writes, per text, the sentences' phonemes and ids (Piper's default id
map) and, stage by stage, what `th2ipa` returned for each Thai run; `th2ipa`
of 240 seeded random runs (random letter strings and concatenations of the
corpus's runs; `null` where TLTK raises); and the Thai spelling of a list
of numbers (`RbnfEngine.format_number`).
"""

import copy
import json
import random
import subprocess
import sys

from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP, phonemes_to_ids
from piper.phonemize_thai import _THAI_RUN, ThaiPhonemizer
from tltk import nlp

TEXTS = [
    "สวัสดีครับ",
    "ฉันชื่อสมชาย ยินดีที่ได้รู้จัก",
    "เด็กๆ ไปโรงเรียน 25 คน",
    "ราคา 1,250 บาท",
    "วันนี้อากาศดีมาก เราไปเที่ยวทะเลกันเถอะ",
    "ข่าวเช้านี้รายงานว่าราคาข้าวสูงขึ้นร้อยละ 12.5",
    "ประเทศไทยมีประชากรประมาณ 66 ล้านคน",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "ผมชอบกินข้าวผัดกุ้งกับต้มยำ",
    "คุณจะไปไหน? ฉันจะไปตลาด!",
    "โควิด-19 ระบาดทั่วโลกตั้งแต่ปี 2563",
    "อุณหภูมิลดลงเหลือ -5 องศา",
    "ส่วนลด 15% สำหรับสมาชิก",
    "ค่าเดินทาง ฿300 ต่อวัน",
    "ผลไม้ ผัก เนื้อสัตว์ ฯลฯ",
    "ครั้งที่ ๒ เมื่อ พ.ศ. ๒๕๖๗",
    "ผมใช้ iPhone และ Android ทุกวัน",
    "ไปๆ มาๆ ก็ถึงบ้าน",
    "นักเรียนแต่ละคนต้องทำการบ้านให้เสร็จ",
    "ภาษาไทยมีห้าวรรณยุกต์ สามัญ เอก โท ตรี จัตวา",
    "ป่า ป้า ป๊า ป๋า",
    "ข่าว ข้าว ขาว",
    "เขาเป็นนักวิทยาศาสตร์ที่มีชื่อเสียง",
    "พระราชวังตั้งอยู่ริมแม่น้ำเจ้าพระยา",
    "มหาวิทยาลัยจุฬาลงกรณ์ก่อตั้งเมื่อปี 1917",
    "หมายเลขโทรศัพท์ 0812345678",
    "ระยะทาง 3.14 กิโลเมตร",
    "ประชุมเวลา 10:30 น.",
    "อย่าลืมปิดไฟก่อนออกจากห้อง",
    "หนังสือเล่มนี้น่าอ่านมาก",
    "ความสุขของคนไทยคือการได้อยู่กับครอบครัว",
    "จันทร์ อังคาร พุธ พฤหัสบดี ศุกร์ เสาร์ อาทิตย์",
    "คร่ำครวญ",
    "ฃวด ฅน",
    "เเม่ค้าขายของ",
    "สิบเก้า ยี่สิบเอ็ด หนึ่งร้อยหนึ่ง",
    "ตัวเลข 1000000 และ 999999999",
    "ทรัพย์ ทราย ทรง",
    "เสร็จแล้วค่ะ\nขอบคุณมากนะคะ",
    "พิมพ์ผิดนิดหน่อย",
    "การประชุมสุดยอดอาเซียนครั้งที่ 44",
    "โอ้โห! สวยจังเลย...",
    "ราชการ, เอกชน; และประชาชน: ทุกฝ่าย",
    "ฯพณฯ นายกรัฐมนตรี",
    "ก็ได้",
    "ความเร็ว 120 กม./ชม.",
]

NUMBERS = [
    "0", "1", "2", "7", "10", "11", "12", "19", "20", "21", "25", "30", "31", "99", "100", "101",
    "111", "120", "999", "1000", "1001", "1011", "1250", "2563", "2567", "10000", "10001",
    "12345", "100000", "101010", "999999", "1000000", "1000001", "1234567", "10000000",
    "66000000", "123456789", "999999999", "1000000000", "1000000000000", "999999999999999999",
    "1000000000000000000", "12345678901234567890", "-5", "-1", "-21", "-0", "-1.5", "-0.5",
    "0.5", "1.5", "3.14", "12.5", "1.05", "1.50", "0.001", "10.0", "2.0", "0.0000001",
    "007", "00.5", "1.000000001", "0812345678",
]


def random_runs(cases, count=240, seed=7):
    """Runs TLTK must read like any other: half random strings over the
    Thai run alphabet (odd clusters, stray marks, silent letters), half
    concatenations of the corpus's runs."""
    rng = random.Random(seed)
    consonants = [chr(c) for c in range(0x0E01, 0x0E2F)]
    vowels = list("ะัาำิีึืุูเแโใไ็่้๊๋์ๆ")
    corpus_runs = [r[0] for c in cases for r in c["runs"]]
    out = []
    for i in range(count):
        if i % 2 == 0:
            n = rng.randint(1, 12)
            out.append("".join(rng.choice(consonants) if rng.random() < 0.6 else rng.choice(vowels) for _ in range(n)))
        else:
            out.append("".join(rng.choice(corpus_runs) for _ in range(rng.randint(2, 4))))
    return out


def th2ipa_runs(text, phonemizer):
    normalized = phonemizer._normalize(text)
    runs = []
    for match in _THAI_RUN.finditer(normalized):
        try:
            out = nlp.th2ipa(match.group())
        except Exception as e:  # noqa: BLE001
            out = f"<error {type(e).__name__}>"
        runs.append([match.group(), out])
    return runs


def snapshot():
    return copy.copy(nlp.BiCount), copy.copy(nlp.Count), nlp.TotalWord


def restore(state):
    nlp.BiCount, nlp.Count, nlp.TotalWord = copy.copy(state[0]), copy.copy(state[1]), state[2]


def phonemize_fresh(text):
    """The text's phonemes in a new process (to check the restored state)."""
    code = (
        "import json,sys\nfrom piper.phonemize_thai import ThaiPhonemizer\n"
        "print(json.dumps(ThaiPhonemizer().phonemize(sys.argv[1])))"
    )
    out = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    out = sys.argv[1]
    phonemizer = ThaiPhonemizer()
    fresh = snapshot()
    cases = []
    for text in TEXTS:
        restore(fresh)
        sentences = phonemizer.phonemize(text)
        restore(fresh)
        runs = []
        for sentence in text.split("\n"):
            runs.extend(th2ipa_runs(sentence, phonemizer))
        restore(fresh)
        cases.append(
            {
                "text": text,
                "normalized": phonemizer._normalize(text),
                "runs": runs,
                "sentences": [
                    {"phonemes": s, "ids": phonemes_to_ids(s, DEFAULT_PHONEME_ID_MAP)} for s in sentences
                ],
            }
        )
    # The restored state equals a fresh process's (the first texts, and one
    # that reads many runs).
    for case in cases[:3] + [cases[5], cases[30]]:
        got = phonemize_fresh(case["text"])
        assert got == [s["phonemes"] for s in case["sentences"]], case["text"]

    runs = []
    for run in random_runs(cases):
        restore(fresh)
        try:
            got = nlp.th2ipa(run)
        except Exception as e:  # noqa: BLE001
            got = None
            print(f"{run}: {type(e).__name__}", file=sys.stderr)
        runs.append([run, got])
    restore(fresh)

    numbers = []
    for n in NUMBERS:
        try:
            text = phonemizer.number_engine.format_number(n).text
        except Exception as e:  # noqa: BLE001
            text = None
            print(f"{n}: {type(e).__name__}", file=sys.stderr)
        numbers.append([n, text])

    with open(out, "w", encoding="utf-8") as f:
        json.dump(
            {
                "reference": "piper-tts 1.8.0 ThaiPhonemizer, tltk 1.10, unicode-rbnf 2.4",
                "cases": cases,
                "random_runs": runs,
                "numbers": numbers,
                "symbols": "".join(k for k in DEFAULT_PHONEME_ID_MAP if len(k) == 1),
            },
            f,
            ensure_ascii=False,
            indent=1,
        )
    print(f"{len(cases)} texts, {len(runs)} random runs, {len(numbers)} numbers")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Goldens for MeCab as pyopenjtalk-plus runs it (the first stage of Piper's
Japanese front end): every morph of the best path with its ids and costs.

The reference is pyopenjtalk-plus 0.4.1.post9 (`piper-tts[ja]` asks for
`pyopenjtalk-plus>=0.4`), `run_mecab_detailed`, whose input is OpenJTalk's
`text2mecab` conversion of the text (half-width to full-width); the goldens
keep that input (the morphs' surfaces joined) so that MeCab is tested on
its own.

    python3 -m venv /tmp/ja9
    /tmp/ja9/bin/pip install pyopenjtalk-plus==0.4.1.post9
    /tmp/ja9/bin/python tools/make_mecab_goldens.py crates/vivace/tests/fixtures/japanese/mecab.json
"""

import json
import random
import sys

import pyopenjtalk

TEXTS = [
    "今日は良い天気ですね。",
    "東京タワーに行きました。",
    "私の名前は田中です。よろしくお願いします。",
    "明日の会議は午前十時から始まります。",
    "この本はとても面白かったので、友達にも勧めたいと思います。",
    "ＡＢＣ　１２３　カタカナ　今日は𠮷野家",
    "スマートフォンでメールを送信してください。",
    "彼女は「ありがとう」と言って、静かに部屋を出ていった。",
    "二〇二四年十二月五日（木曜日）",
    "ｅｍａｉｌアドレスはｔｅｓｔ＠ｅｘａｍｐｌｅ．ｃｏｍです。",
    "うーん、どうしようかなぁ……",
    "サンフランシスコ発ニューヨーク行きの便は欠航となりました。",
    "吾輩は猫である。名前はまだ無い。",
    "ドストエフスキーの『罪と罰』を読んだ。",
    "ｘｙｚｚｙ　ぱぴぷぺぽ　ヴァイオリン",
    "ＣＯＶＩＤ－１９の影響で、多くのイベントが中止された。",
    "ｋｍ／ｈ、％、￥５００、３．１４",
    "あいうえおかきくけこさしすせそ",
    "漢字仮名交じり文を形態素解析する。",
    "ゔぁ、ゐゑ、ヰヱ、ヵヶ",
]


def random_texts(count=120, seed=11):
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x3041, 0x3097)],
        [chr(c) for c in range(0x30A1, 0x30FB)],
        list("日本語学校先生時間電車会社仕事今日明後年月人大小中上下山川田口目手水火木金土"),
        list("、。ー・「」！？（）　０１２３４５６７８９ＡＢＣｘｙｚ"),
    ]
    out = []
    for _ in range(count):
        n = rng.randint(1, 16)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return out


def main():
    cases = []
    for text in TEXTS + random_texts():
        _, morphs = pyopenjtalk.run_mecab_detailed(text)
        spans = [m["char_span"] for m in morphs]
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), text
        cases.append(
            {
                "text": text,
                "input": "".join(m["surface"] for m in morphs),
                "morphs": [
                    {
                        "surface": m["surface"],
                        "feature": ",".join(m["features"][1:]),
                        "left": m["left_id"],
                        "right": m["right_id"],
                        "pos": m["pos_id"],
                        "word_cost": m["word_cost"],
                        "path_cost": m["node_cost"],
                        "unknown": m["is_unknown"],
                    }
                    for m in morphs
                ],
            }
        )
    # OpenJTalk's text2mecab on its own: every ASCII character, every
    # half-width katakana alone and before each sound mark, between kana.
    probes = [f"あ{chr(c)}い" for c in range(0x01, 0x80)]
    for c in range(0xFF61, 0xFFA0):
        probes += [f"あ{chr(c)}い", f"あ{chr(c)}\uff9eい", f"あ{chr(c)}\uff9fい"]
    probes += ["ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟ ﾜﾞｦﾞｱﾞ", "tab\there\r\nnew line", "ＡＢＣ ｱｲｳ abc 123"]
    text2mecab = []
    for text in probes:
        _, morphs = pyopenjtalk.run_mecab_detailed(text)
        text2mecab.append([text, "".join(m["surface"] for m in morphs)])
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(
            {"reference": "pyopenjtalk-plus 0.4.1.post9 run_mecab_detailed", "cases": cases, "text2mecab": text2mecab},
            f,
            ensure_ascii=False,
            indent=0,
        )
    print(f"{len(cases)} texts, {sum(len(c['morphs']) for c in cases)} morphs")


if __name__ == "__main__":
    main()

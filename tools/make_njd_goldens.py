#!/usr/bin/env python3
"""Goldens for the middle of Piper's Japanese front end: NJD (the word list
OpenJTalk builds from MeCab's morphs and rewrites with its reading, digit,
accent-phrase, accent-type, devoicing and long-vowel rules), the
full-context labels OpenJTalk makes from it, and the phonemes Piper reads
from those labels.

The reference is pyopenjtalk-plus 0.4.1.post9 (`piper-tts[ja]` asks for
`pyopenjtalk-plus>=0.4`; post9 is the newest release with a source
distribution): `run_mecab(text)` gives MeCab's features (without
`記号,空白`), and `run_njd_from_mecab(features)` runs `mecab2njd`,
`njd_set_pronunciation`, pyopenjtalk-plus's
`apply_original_rule_before_chaining`, then `njd_set_digit`,
`njd_set_accent_phrase`, `njd_set_accent_type`, `njd_set_unvoiced_vowel`
and `njd_set_long_vowel`. Both lists are kept, so that NJD is tested on
its own input and MeCab's part is checked too. Then `make_label(njd)`
gives the labels, and piper-tts 1.8's `JapanesePhonemizer` reads them
into phonemes (its `_phonemize_sentence`, handed this NJD instead of
`run_frontend`'s, whose pyopenjtalk-plus post-processing is the stage
not ported yet). Each stage is tested on the reference's own input.
`post` is pyopenjtalk-plus's `apply_postprocessing` with the 「何」 model
off (tested on its own below) and Sudachi's kanji readings on, kept as its
changes to the NJD (`post_njd`, the whole list, where a 々 read again
changed the number of words). `piper` is piper-tts's whole
`JapanesePhonemizer.phonemize` (pyopenjtalk-plus's defaults, both model
steps on), for the agreement the test reports. `nani` is the 「何」 model's
class probabilities (onnxruntime) for every distinct next-word row of the
corpus.

    python3 -m venv /tmp/ja9
    /tmp/ja9/bin/pip install pyopenjtalk-plus==0.4.1.post9 piper-tts==1.8.0 \
        sudachipy==0.7.0 sudachidict_core==20261015
    /tmp/ja9/bin/python tools/make_njd_goldens.py crates/vivace/tests/fixtures/japanese/njd.json
"""

import copy
import json
import random
import sys

import numpy as np
import pyopenjtalk
from pyopenjtalk.yomi_model import nani_predict
from piper.phonemize_japanese import JapanesePhonemizer

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from make_mecab_goldens import TEXTS  # noqa: E402

NUMBERS = [
    "2024年12月5日の午後3時45分に、1,234,567円を支払いました。",
    "電話番号は03-1234-5678です。",
    "円周率は3.14159で、約3.14です。",
    "100人中99人が賛成し、残りの1人は反対した。",
    "第3章の12ページから15ページまで読んでください。",
    "気温は-5度から25度まで変わります。",
    "1万2千3百円、10億円、1兆円、0円。",
    "三百六十五日、二十四時間、一千万。",
    "〇〇さんと××さん、二〇〇八年。",
    "5分の3、3分の1、半分。",
    "1本、2本、3本、6杯、8匹、10回、1個、2人、4日、20歳。",
    "1号車の2番線、3階の4号室。",
    "ver.2.0.1をインストールした。",
    "１２３４５６７８９０１２３４５６７８９０",
    "0.001、0.5、100.0、12.34.56",
    "昭和64年と平成元年、令和6年。",
    "1月1日、2月29日、10月10日、12月31日。",
    "3つ、7つ、9つ、10、100、1000、10000。",
]

PHRASES = [
    "東京特許許可局で、新しいシステムを導入することになりました。",
    "彼は推し量るように私を見つめ、刺し貫くような視線を送った。",
    "ご遠慮ください。ご配慮いただきありがとうございます。",
    "情報が不足する。人手不足が深刻だ。",
    "赤くなる、静かにする、美しくなった。",
    "食べられた、行かせた、見ちゃった。",
    "勉強する、運動した、料理します。",
    "すみません、これはいくらですか？はい、そうです！",
    "あっ、えーと、そのー、まあ、いいか。",
    "キャッシュフロー、ウィーン、フィンランド、ヴェネツィア。",
    "ぴゃぴゅぴょ、きゃきゅきょ、しゃしゅしょ、ちゃちゅちょ。",
    "学校へ行って、先生に質問して、図書館で勉強した。",
    "お茶を飲みながら、ゆっくりと話しましょう。",
    "明日は晴れるでしょうか。",
    "そうですね、たぶん大丈夫だと思います。",
]


PARAGRAPHS = [
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。",
    "メロスは激怒した。必ず、かの邪智暴虐の王を除かなければならぬと決意した。メロスには政治がわからぬ。",
    "本日は晴天なり。気温は二十五度、湿度は六十パーセントです。午後から雨が降るでしょう。",
    "何を食べますか？何でもいいです。何時に会いましょうか。",
    "その中で一番高い山はどれですか。大人になったら、小さな家を建てたいです。",
    "私は東京大学で日本語を勉強しています。毎日、電車で学校に行きます！",
    "人々は時々、色々な所へ行く。それぞれの道を進む。",
    "会議の資料を明日までに送ってください。よろしくお願いいたします。",
    "こんにちは、世界。今日はいい天気ですね？ええ、本当に。",
    "ＡＩ技術の進歩により、翻訳の品質は大きく向上しました。",
]

# Iteration marks that MeCab leaves as words of their own (process_odori_features).
ODORI = [
    "叙々々苑と叙々々々苑", "部分々々、其他々々、前進々々。", "結婚式々場と民主々義と学生々活。",
    "会社々長が東京都々議会へ。", "みすゞ、づゝ、ぶゞ漬け、バナヽ、ハヽ、ミヽ。", "ーゝ、きゃゝ、しゃゞ、さゝ、がゝ、ガヾ。",
    "山々々、日々々、散々々、代々々、我々々、人々々。", "個々々々人と一人々々と漢々字。", "々、々々々、あ々、ゝ。ゝ（々）ABC々１々。",
    "こゝろ、学問のすゝめ、いすゞ自動車、佐々木さんと代々木、様々な人々。", "ますゝ、時々々刻々、民主々、式々",
]


# Each multi-reading kanji alone as a word, in the contexts that pick its readings.
KANJI = [
    "この方は先生です。こちらの方が安い。右の方へ行く。",
    "その時、時は金なり。三時に会う。時を忘れる。",
    "上の階、机の上、上に立つ。川の上手と下手。",
    "人が多い。あの人、外国人、三人。",
    "中に入る。家の中、一日中、中の上。",
    "気がする。気を付けて。気が早い。",
    "風が強い。こんな風に。和風の家。",
    "前に進む。駅の前、前の日、三年前。",
    "後で話す。その後、後の祭り。",
    "間に合う。この間、人の間。",
    "手を洗う。上手な手、手が空く。",
    "水が冷たい。水の音。",
    "金がない。金の冠。",
    "表に出る。表を見る。",
    "色が白い。色々な色。",
    "大の大人、小の月、高と低。",
    "生で食べる。生の声。",
    "体が重い。体を休める。",
    "空が青い。空の箱。",
    "家に帰る。家の人。",
    "行を改める。行く人。",
    "要は簡単だ。要となる。",
    "面と向かう。面を取る。",
    "主の祈り。主に話す。",
    "片が付く。",
    "値が上がる。値を求める。",
    "君と僕。",
    "頭が痛い。頭を下げる。",
    "角を曲がる。角が立つ。",
    "下に置く。下の名前。",
    "漢字（かんじ）の方(かた)、時（とき）、人(ひと)は。",
    "すごーーーい！！スーパーの方へ。〜〜上〜〜",
    "ＡＢＣの上、ｶﾀｶﾅの方、㍻の時、①の人。",
    "Hello World! I'm a programmer. 方 中 気",
    "絵文字😀の方👍🏻、İstanbulの人、ΑΒΓの上、Жизньの中。",
]


def random_texts(count=160, seed=23):
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x3041, 0x3097)],
        [chr(c) for c in range(0x30A1, 0x30FB)],
        list("日本語学校先生時間電車会社仕事今日明後年月人大小中上下山川田口目手水火木金土何分円本個回"),
        list("、。ー・「」！？（）　０１２３４５６７８９．，－ＡＢＣｘｙｚ〇一二三四五六七八九十百千万億兆"),
        list("0123456789.,-"),
    ]
    out = []
    for _ in range(count):
        n = rng.randint(1, 20)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return out


class GivenNjd:
    """pyopenjtalk for Piper's phonemizer, with the NJD given."""

    def __init__(self, njd):
        self.njd = njd

    def run_frontend(self, _sentence):
        return self.njd

    def make_label(self, njd):
        return pyopenjtalk.make_label(njd)


def main():
    cases = []
    piper = JapanesePhonemizer()
    written = TEXTS + NUMBERS + PHRASES + ODORI + KANJI
    for index, text in enumerate(written + random_texts()):
        features = pyopenjtalk.run_mecab(text)
        njd = pyopenjtalk.run_njd_from_mecab(features)
        case = {"text": text, "mecab": features, "njd": [dict(n) for n in njd]}
        post = pyopenjtalk.apply_postprocessing(
            text, copy.deepcopy(njd), predict_nani=False
        )
        # Kept as [node, field, value] changes to the NJD, to keep the file
        # small, or whole where a 々 read again changed the number of words.
        changes = [[i, k, v] for i, (a, b) in enumerate(zip(njd, post)) for k, v in b.items() if a[k] != v]
        if len(post) != len(njd):
            case["post_njd"] = [dict(n) for n in post]
        elif changes:
            case["post"] = changes
        # Labels are long (about 250 bytes a phoneme): kept for the written
        # texts and the first 60 random ones, to keep the file small.
        if index < len(written) + 60:
            piper.pyopenjtalk = GivenNjd(njd)
            case["labels"] = pyopenjtalk.make_label(njd)
            case["phones"] = piper._phonemize_sentence(text)
        cases.append(case)
    # The 「何」 model on every distinct next-word row of the corpus.
    rows = sorted({tuple(n[c] for c in nani_predict.X_COLS) for case in cases for n in case["njd"]})
    nani = []
    for row in rows:
        encoded = nani_predict.enc_session.run(None, {"input": np.array([list(row)])})[0]
        probabilities = nani_predict.model_session.run(None, {"input": encoded.astype(np.float32)})[0][0]
        nani.append({"row": list(row), "probabilities": [float(p) for p in probabilities]})
    paragraphs = written + PARAGRAPHS
    piper_cases = [{"text": t, "phonemes": JapanesePhonemizer().phonemize(t)} for t in paragraphs]
    # One case per line: small, and diffs stay readable.
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write('{"reference": "pyopenjtalk-plus 0.4.1.post9 run_njd_from_mecab(run_mecab(text))",\n"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
        f.write('\n],\n"nani": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in nani))
        f.write('\n],\n"piper": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in piper_cases))
        f.write("\n]}\n")
    print(f"{len(cases)} texts, {sum(len(c['njd']) for c in cases)} NJD nodes")


if __name__ == "__main__":
    main()

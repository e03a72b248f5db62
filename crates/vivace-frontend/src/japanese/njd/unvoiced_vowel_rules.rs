//! OpenJTalk's `njd_set_unvoiced_vowel_rule_utf_8.h` (pyopenjtalk-plus 0.4.1.post9's fork), transcribed:
//! Copyright (c) 2008-2016 Nagoya Institute of Technology, Department of
//! Computer Science; BSD-3-Clause (its licence travels in docs/PHONEMIZATION.md).

#![allow(dead_code)]

pub(super) const NJD_SET_UNVOICED_VOWEL_FILLER: &str = "フィラー";
pub(super) const NJD_SET_UNVOICED_VOWEL_DOUSHI: &str = "動詞";
pub(super) const NJD_SET_UNVOICED_VOWEL_JODOUSHI: &str = "助動詞";
pub(super) const NJD_SET_UNVOICED_VOWEL_JOSHI: &str = "助詞";
pub(super) const NJD_SET_UNVOICED_VOWEL_KANDOUSHI: &str = "感動詞";
pub(super) const NJD_SET_UNVOICED_VOWEL_TOUTEN: &str = "、";
pub(super) const NJD_SET_UNVOICED_VOWEL_QUESTION: &str = "？";
pub(super) const NJD_SET_UNVOICED_VOWEL_EXCLAMATION: &str = "！";
pub(super) const NJD_SET_UNVOICED_VOWEL_QUOTATION: &str = "’";
pub(super) const NJD_SET_UNVOICED_VOWEL_SHI: &str = "シ";
pub(super) const NJD_SET_UNVOICED_VOWEL_MA: &str = "マ";
pub(super) const NJD_SET_UNVOICED_VOWEL_DE: &str = "デ";
pub(super) const NJD_SET_UNVOICED_VOWEL_CHOUON: &str = "ー";
pub(super) const NJD_SET_UNVOICED_VOWEL_SU: &str = "ス";
pub(super) const NJD_SET_UNVOICED_VOWEL_CANDIDATE_LIST1: &[&str] = &["シィ", "スィ", "ス"];
pub(super) const NJD_SET_UNVOICED_VOWEL_NEXT_MORA_LIST1: &[&str] = &[
    "カ", "キ", "ク", "ケ", "コ", "タ", "チ", "ツ", "テ", "ト", "ハ", "ヒ", "フ", "ヘ", "ホ", "パ",
    "ピ", "プ", "ペ", "ポ",
];
pub(super) const NJD_SET_UNVOICED_VOWEL_CANDIDATE_LIST2: &[&str] = &["フィ", "ヒ", "フ"];
pub(super) const NJD_SET_UNVOICED_VOWEL_NEXT_MORA_LIST2: &[&str] = &[
    "カ", "キ", "ク", "ケ", "コ", "サ", "シ", "ス", "セ", "ソ", "タ", "チ", "ツ", "テ", "ト", "パ",
    "ピ", "プ", "ペ", "ポ",
];
pub(super) const NJD_SET_UNVOICED_VOWEL_CANDIDATE_LIST3: &[&str] = &[
    "キュ", "シュ", "チュ", "ツィ", "ヒュ", "ピュ", "テュ", "トゥ", "ティ", "キ", "ク", "シ", "チ",
    "ツ", "ピ", "プ",
];
pub(super) const NJD_SET_UNVOICED_VOWEL_NEXT_MORA_LIST3: &[&str] = &[
    "カ", "キ", "ク", "ケ", "コ", "サ", "シ", "ス", "セ", "ソ", "タ", "チ", "ツ", "テ", "ト", "ハ",
    "ヒ", "フ", "ヘ", "ホ", "パ", "ピ", "プ", "ペ", "ポ",
];
pub(super) const NJD_SET_UNVOICED_VOWEL_MORA_LIST: &[&str] = &[
    "クァ", "クィ", "クゥ", "クェ", "クォ", "グァ", "グィ", "グゥ", "グェ", "グォ", "クヮ", "グヮ",
    "ヮ", "デェ", "シィ", "フィ", "ヴョ", "ヴュ", "ヴャ", "ヴォ", "ヴェ", "ヴィ", "ヴァ", "ヴ",
    "ン", "ヲ", "ヱ", "ヰ", "ワ", "ロ", "レ", "ル", "リョ", "リュ", "リャ", "リェ", "リ", "ラ",
    "ヨ", "ョ", "ユ", "ュ", "ヤ", "ャ", "モ", "メ", "ム", "ミョ", "ミュ", "ミャ", "ミェ", "ミ",
    "マ", "ポ", "ボ", "ホ", "ペ", "ベ", "ヘ", "プ", "ブ", "フォ", "フェ", "フィ", "ファ", "フ",
    "ピョ", "ピュ", "ピャ", "ピェ", "ピ", "ビョ", "ビュ", "ビャ", "ビェ", "ビ", "ヒョ", "ヒュ",
    "ヒャ", "ヒェ", "ヒ", "パ", "バ", "ハ", "ノ", "ネ", "ヌ", "ニョ", "ニュ", "ニャ", "ニェ", "ニ",
    "ナ", "ドゥ", "ド", "トゥ", "ト", "デョ", "デュ", "デャ", "ディ", "デ", "テョ", "テュ", "テャ",
    "ティ", "テ", "ヅ", "ツォ", "ツェ", "ツィ", "ツァ", "ツ", "ッ", "ヂ", "チョ", "チュ", "チャ",
    "チェ", "チ", "ダ", "タ", "ゾ", "ソ", "ゼ", "セ", "ズィ", "ズ", "スィ", "ス", "ジョ", "ジュ",
    "ジャ", "ジェ", "ジ", "ショ", "シュ", "シャ", "シェ", "シ", "ザ", "サ", "ゴ", "コ", "ゲ", "ケ",
    "グ", "ク", "ギョ", "ギュ", "ギャ", "ギェ", "ギ", "キョ", "キュ", "キャ", "キェ", "キ", "ガ",
    "カ", "オ", "ォ", "エ", "ェ", "ウォ", "ウェ", "ウィ", "ウ", "ゥ", "イェ", "イ", "ィ", "ア",
    "ァ", "ー",
];

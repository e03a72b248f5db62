//! pyopenjtalk-plus's Python rules after NJD (`apply_postprocessing`, as
//! `run_frontend` applies them with its defaults): filler accents, the
//! reading of a standalone 何 (by its rules, then its model through
//! [`NaniReading`]), the auxiliary う after a/i/e-row morae, accent nuclei
//! on ー/ッ/ン moved one mora back, and ます/ない/れる… moving the nucleus
//! after a verb's accent, then the iteration marks 々 ゝ read as what they
//! repeat ([`odoriji`]); with Sudachi, a kanji with several readings
//! standing alone takes Sudachi's ([`kanji_yomi`]).

pub mod kanji_yomi;
pub mod odoriji;

use super::njd::Feature;
use super::sudachi::Sudachi;
pub use odoriji::Reanalyze;

/// The row (a, i, u, e, o) of a katakana mora's vowel (pyopenjtalk-plus's
/// `_DAN_MAP`).
fn dan(c: char) -> Option<char> {
    Some(match c {
        'ア' | 'カ' | 'サ' | 'タ' | 'ナ' | 'ハ' | 'マ' | 'ヤ' | 'ラ' | 'ワ' | 'ガ' | 'ザ'
        | 'ダ' | 'バ' | 'パ' | 'ァ' => 'a',
        'イ' | 'キ' | 'シ' | 'チ' | 'ニ' | 'ヒ' | 'ミ' | 'リ' | 'ギ' | 'ジ' | 'ヂ' | 'ビ'
        | 'ピ' | 'ィ' => 'i',
        'ウ' | 'ク' | 'ス' | 'ツ' | 'ヌ' | 'フ' | 'ム' | 'ユ' | 'ル' | 'グ' | 'ズ' | 'ヅ'
        | 'ブ' | 'プ' | 'ヴ' | 'ゥ' => 'u',
        'エ' | 'ケ' | 'セ' | 'テ' | 'ネ' | 'ヘ' | 'メ' | 'レ' | 'ゲ' | 'ゼ' | 'デ' | 'ベ'
        | 'ペ' | 'ェ' => 'e',
        'オ' | 'コ' | 'ソ' | 'ト' | 'ノ' | 'ホ' | 'モ' | 'ヨ' | 'ロ' | 'ヲ' | 'ゴ' | 'ゾ'
        | 'ド' | 'ボ' | 'ポ' | 'ォ' => 'o',
        _ => return None,
    })
}

/// pyopenjtalk-plus's 「何」 model (`yomi_model`'s `predict`): whether a
/// standalone 何 reads ナン before the word `next`.
pub trait NaniReading: Send + Sync {
    /// True for ナン, false for ナニ.
    fn reads_nan(&self, next: &Feature) -> bool;
}

/// `is_high_confidence_nani_context`: the next word alone makes it ナニ.
fn is_high_confidence_nani_context(next: Option<&Feature>) -> bool {
    next.is_some_and(|n| {
        ["を", "が", "に", "も", "より", "する"].contains(&n.orig.as_str())
            || (n.string == "で" && n.pos == "助動詞" && n.ctype == "特殊・ダ")
    })
}

/// `predict_nani_reading`: each standalone 何 reads ナニ or ナン, by the
/// next word (before a particle を/が/に/も/より, する, or the copula で:
/// ナニ; before the case particle で: ナン) or else by the model (ナニ
/// without one, at the end, or when pyopenjtalk-plus has no onnxruntime).
pub fn predict_nani_reading(features: &mut [Feature], model: Option<&dyn NaniReading>) {
    for i in 0..features.len() {
        if features[i].orig != "何" {
            continue;
        }
        let next = features.get(i + 1);
        let keep_nan =
            next.is_some_and(|n| n.orig == "で" && n.pos == "助詞" && n.pos_group1 == "格助詞");
        let nan = if is_high_confidence_nani_context(next) {
            false
        } else if keep_nan {
            true
        } else {
            match (next, model) {
                (Some(next), Some(model)) => model.reads_nan(next),
                _ => false,
            }
        };
        let yomi = if nan { "ナン" } else { "ナニ" };
        features[i].pron = yomi.into();
        features[i].read = yomi.into();
    }
}

/// Whether a word starts an accent phrase (its `chain_flag` is 0 or -1).
fn starts_phrase(f: &Feature) -> bool {
    f.chain_flag == 0 || f.chain_flag == -1
}

/// `modify_filler_accent`: a filler's accent stays within its morae, and a
/// noun after a filler starts its own accent phrase.
pub fn modify_filler_accent(features: &mut [Feature]) {
    let mut after_filler = false;
    for f in features {
        if f.pos == "フィラー" {
            if f.acc > f.mora_size {
                f.acc = 0;
            }
            after_filler = true;
        } else if after_filler {
            if f.pos == "名詞" {
                f.chain_flag = 0;
            }
            after_filler = false;
        }
    }
}

/// `suppress_unnatural_auxiliary_u_long_vowel`: the auxiliary う that
/// OpenJTalk lengthened to ー after a verb is read ウ again when the
/// previous mora is of the a, i or e row.
pub fn suppress_unnatural_auxiliary_u_long_vowel(features: &mut [Feature]) {
    for i in 1..features.len() {
        let (head, tail) = features.split_at_mut(i);
        let (current, next) = (&head[i - 1], &mut tail[0]);
        if next.pron != "ー" || next.read != "ウ" {
            continue;
        }
        let pron = current.pron.trim_end_matches('’');
        if pron
            .chars()
            .next_back()
            .and_then(dan)
            .is_some_and(|d| matches!(d, 'a' | 'i' | 'e'))
        {
            next.pron = "ウ".into();
        }
    }
}

/// `retreat_acc_nuc`: an accent nucleus that falls on ー, ッ or ン moves
/// one mora back.
pub fn retreat_acc_nuc(features: &mut [Feature]) {
    const SMALL: [char; 8] = ['ャ', 'ュ', 'ョ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ'];
    let mut head = 0;
    let mut acc = 0;
    for i in 0..features.len() {
        if starts_phrase(&features[i]) {
            head = i;
            acc = features[i].acc;
        }
        let f = &features[i];
        let mut pron: Vec<char> = f.pron.chars().filter(|c| !SMALL.contains(c)).collect();
        if pron.is_empty() {
            pron = f.pron.chars().collect();
        }
        if acc > 0 {
            if acc <= f.mora_size {
                // Python's pron[acc - 1], or pron[0] past the end.
                let nucleus = usize::try_from(acc - 1)
                    .ok()
                    .and_then(|k| pron.get(k))
                    .or(pron.first());
                if nucleus.is_some_and(|c| matches!(c, 'ー' | 'ッ' | 'ン')) {
                    features[head].acc -= 1;
                }
                acc = -1;
            } else {
                acc -= f.mora_size;
            }
        }
    }
}

/// `modify_acc_after_chaining`: after a verb whose accent nucleus is
/// reached, 特殊・マス moves the nucleus onto ま (す), 特殊・ナイ onto the
/// mora before ない, and れる/られる/すぎる/せる/させる onto their own.
pub fn modify_acc_after_chaining(features: &mut [Feature]) {
    let mut acc = 0;
    let mut after_nucleus = false;
    let mut phrase_len = 0;
    let mut head = 0;
    for i in 0..features.len() {
        if starts_phrase(&features[i]) {
            after_nucleus = false;
            head = i;
            acc = features[i].acc;
            phrase_len = 0;
        }
        if acc == 0 {
            continue;
        }
        let (ctype, cform, orig, word_acc, mora_size) = {
            let f = &features[i];
            (
                f.ctype.clone(),
                f.cform.clone(),
                f.orig.clone(),
                f.acc,
                f.mora_size,
            )
        };
        if after_nucleus {
            if ctype == "特殊・マス" {
                features[head].acc = if cform != "未然形" {
                    phrase_len + 1
                } else {
                    phrase_len + 2
                };
            } else if ctype == "特殊・ナイ" {
                features[head].acc = phrase_len;
            } else if ["れる", "られる", "すぎる", "せる", "させる"].contains(&orig.as_str())
            {
                features[head].acc = phrase_len + word_acc;
            } else {
                after_nucleus = false;
                acc = 0;
            }
            phrase_len += mora_size;
        } else {
            phrase_len += mora_size;
            if acc <= mora_size {
                after_nucleus = true;
            } else {
                acc -= mora_size;
            }
        }
    }
}

/// The models and the front end the rules ask.
pub struct Helpers<'a> {
    /// The 「何」 model (without one, the 何 step is skipped, as with
    /// `predict_nani=False`).
    pub nani: Option<&'a dyn NaniReading>,
    /// Sudachi (without it, the kanji readings step is skipped, as with
    /// `use_sudachi_kanji_yomi=False`).
    pub sudachi: Option<&'a Sudachi>,
    /// OpenJTalk's own front end, for a 々 read again with the kanji
    /// around it.
    pub reanalyze: Reanalyze<'a>,
}

/// The rules above in `apply_postprocessing`'s order, for the words of
/// `text`.
pub fn apply(text: &str, features: &mut Vec<Feature>, helpers: &Helpers<'_>) {
    modify_filler_accent(features);
    if helpers.nani.is_some() {
        predict_nani_reading(features, helpers.nani);
    }
    if let Some(sudachi) = helpers.sudachi {
        kanji_yomi::modify_kanji_yomi(text, features, sudachi);
    }
    suppress_unnatural_auxiliary_u_long_vowel(features);
    retreat_acc_nuc(features);
    modify_acc_after_chaining(features);
    odoriji::process_odori_features(features, helpers.reanalyze);
}

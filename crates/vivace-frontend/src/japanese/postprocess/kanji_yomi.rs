//! pyopenjtalk-plus's `modify_kanji_yomi`: a kanji with several readings
//! (方, 時, 上, 人, 中, 気, …) standing alone as a word takes the reading
//! Sudachi gives it in the same sentence, when Sudachi's single-kanji words
//! line up one for one with OpenJTalk's.

use super::super::njd::Feature;
use super::super::sudachi::Sudachi;

/// `MULTI_READ_KANJI_LIST` less 何 (which its own model reads).
const MULTI_READING_KANJI: &str = "風観方出時上下君手嫌表対色人前後角金頭筆水間棚床入来塗怒包被開弾捻潜支抱行降種訳糞空性体等生止堪捩家縁労中高低気要退面主術直片緒小大値";

/// The word is one of those kanji, alone.
pub fn is_multi_reading_kanji(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if MULTI_READING_KANJI.contains(c))
}

/// `sudachi_analyze`: Sudachi's words of `text` (its ー removed) that are
/// one of the kanji, with their readings; `None` where Sudachi refuses the
/// text (over 49,149 bytes, where pyopenjtalk-plus fails).
pub fn sudachi_analyze(sudachi: &Sudachi, text: &str) -> Option<Vec<(String, String)>> {
    let words = sudachi.tokenize(&text.replace('ー', "")).ok()?;
    Some(
        words
            .into_iter()
            .filter(|w| is_multi_reading_kanji(&w.surface))
            .map(|w| (w.surface, w.reading))
            .collect(),
    )
}

/// `modify_kanji_yomi`: matched from the end, each such word of NJD takes
/// Sudachi's reading (方 read ホウ is pronounced ホオ), except a suffix,
/// whose reading OpenJTalk joined to the word before; nothing changes
/// unless both sides have the same kanji in the same order.
pub fn modify_kanji_yomi(text: &str, features: &mut [Feature], sudachi: &Sudachi) {
    if !features.iter().any(|f| is_multi_reading_kanji(&f.orig)) {
        return;
    }
    let Some(mut readings) = sudachi_analyze(sudachi, text) else {
        return;
    };
    let mut changes = Vec::new();
    for (i, f) in features.iter().enumerate().rev() {
        if !is_multi_reading_kanji(&f.orig) {
            continue;
        }
        let Some((surface, reading)) = readings.pop() else {
            return;
        };
        if surface != f.orig {
            return;
        }
        if f.pos_group1 == "接尾" {
            continue;
        }
        let reading = if surface == "方" && reading == "ホウ" {
            "ホオ".to_owned()
        } else {
            reading
        };
        changes.push((i, reading));
    }
    if !readings.is_empty() {
        return;
    }
    for (i, reading) in changes {
        features[i].pron.clone_from(&reading);
        features[i].read = reading;
    }
}

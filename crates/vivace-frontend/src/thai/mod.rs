//! Piper's Thai front end (`phoneme_type: thai`): piper-tts 1.8's
//! `ThaiPhonemizer` over TLTK's `th2ipa` ([`tltk`]) with unicode-rbnf's
//! Thai numbers ([`numbers`]). Phonemes are IPA code points with one tone
//! digit (1 mid … 5 rising) after each syllable and a space between words.
//!
//! The text is split into sentences at `.?!` and newlines, normalized (NFC,
//! Thai digits, obsolete letters, a split SARA AM, `ฯลฯ`, numbers, baht and
//! percent spelled out, silent marks dropped), and each run of Thai letters
//! goes through TLTK on its own; anything else becomes a word break or one
//! of the punctuation phonemes `.,?!:;-`.

pub mod data;
pub mod numbers;
pub mod tltk;

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::error::Result;
pub use data::TltkData;

/// The single-code-point keys of piper-tts's `DEFAULT_PHONEME_ID_MAP`:
/// a syllable with any other symbol is dropped, as Piper drops it.
const DEFAULT_SYMBOLS: &str = "_^$ !'(),-.:;?abcdefhijklmnopqrstuvwxyz\u{e6}\u{e7}\u{f0}\u{f8}\u{127}\u{14b}\u{153}\u{1c0}\u{1c1}\u{1c2}\u{1c3}\u{250}\u{251}\u{252}\u{253}\u{254}\u{255}\u{256}\u{257}\u{258}\u{259}\u{25a}\u{25b}\u{25c}\u{25e}\u{25f}\u{260}\u{261}\u{262}\u{263}\u{264}\u{265}\u{266}\u{267}\u{268}\u{26a}\u{26b}\u{26c}\u{26d}\u{26e}\u{26f}\u{270}\u{271}\u{272}\u{273}\u{274}\u{275}\u{276}\u{278}\u{279}\u{27a}\u{27b}\u{27d}\u{27e}\u{280}\u{281}\u{282}\u{283}\u{284}\u{288}\u{289}\u{28a}\u{28b}\u{28c}\u{28d}\u{28e}\u{28f}\u{290}\u{291}\u{292}\u{294}\u{295}\u{298}\u{299}\u{29b}\u{29c}\u{29d}\u{29f}\u{2a1}\u{2a2}\u{2b2}\u{2c8}\u{2cc}\u{2d0}\u{2d1}\u{2de}\u{3b2}\u{3b8}\u{3c7}\u{1d7b}\u{2c71}0123456789\u{327}\u{303}\u{32a}\u{32f}\u{329}\u{2b0}\u{2e4}\u{3b5}\u{2193}#\"\u{2191}\u{33a}\u{33b}g\u{2a6}X\u{31d}\u{30a}\u{25d}\u{2b7}";

/// Punctuation kept as phonemes.
const PUNCTUATION: &str = ".,?!:;-";

/// Tone digits, one per syllable.
const TONES: &str = "12345";

/// Thai's phonemizer: TLTK's tables, loaded once.
pub struct ThaiPhonemizer {
    data: TltkData,
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| {
        Regex::new(pattern).unwrap_or_else(|e| panic!("constant regex {pattern}: {e}"))
    })
}

impl ThaiPhonemizer {
    /// Loads TLTK's data from `dir` (the voice store's copy of the wheel's
    /// `sylrule.lts`, `thaisyl.dict`, `sylseg.3g` and `PhSTrigram.sts`).
    pub fn load(dir: &Path) -> Result<Self> {
        Ok(Self {
            data: TltkData::load(dir)?,
        })
    }

    /// The text's sentences as phonemes (one code point each), as
    /// `ThaiPhonemizer.phonemize` returns them from a fresh process.
    pub fn phonemize(&self, text: &str) -> Vec<Vec<String>> {
        let mut session = tltk::Session::new(&self.data);
        split_sentences(text)
            .into_iter()
            .map(|sentence| phonemize_sentence(&mut session, sentence))
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// TLTK's `th2ipa` of one run of Thai letters in a fresh state (`None`
    /// where TLTK raises), for tests and debugging.
    pub fn th2ipa(&self, run: &str) -> Option<String> {
        tltk::Session::new(&self.data).th2ipa(run)
    }
}

/// `(?<=[.?!])\s+|\n+`: Piper's Thai sentence split.
fn split_sentences(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let after_stop = i > 0 && matches!(chars[i - 1].1, '.' | '?' | '!');
        let run = if after_stop && tltk::py_is_space(c) {
            chars[i..]
                .iter()
                .take_while(|(_, c)| tltk::py_is_space(*c))
                .count()
        } else if c == '\n' {
            chars[i..].iter().take_while(|(_, c)| *c == '\n').count()
        } else {
            0
        };
        if run > 0 {
            out.push(&text[start..at]);
            i += run;
            start = chars.get(i).map_or(text.len(), |(b, _)| *b);
        } else {
            i += 1;
        }
    }
    out.push(&text[start..]);
    out
}

fn phonemize_sentence(session: &mut tltk::Session<'_>, sentence: &str) -> Vec<String> {
    static THAI_RUN: OnceLock<Regex> = OnceLock::new();
    let sentence = normalize(sentence);
    let mut phonemes: Vec<String> = Vec::new();
    let mut position = 0;
    for run in regex(&THAI_RUN, "[ก-ฮะ-ฺเ-๎]+").find_iter(&sentence) {
        punctuation_phonemes(&sentence[position..run.start()], &mut phonemes);
        phonemes.extend(phonemize_run(session, run.as_str()));
        position = run.end();
    }
    punctuation_phonemes(&sentence[position..], &mut phonemes);
    let first = phonemes
        .iter()
        .position(|p| p != " ")
        .unwrap_or(phonemes.len());
    phonemes.drain(..first);
    while phonemes.last().is_some_and(|p| p == " ") {
        phonemes.pop();
    }
    phonemes
}

fn phonemize_run(session: &mut tltk::Session<'_>, run: &str) -> Vec<String> {
    let Some(transcription) = session.th2ipa(run) else {
        tracing::warn!("TLTK could not transcribe Thai run: {run}");
        return Vec::new();
    };
    let mut phonemes: Vec<String> = Vec::new();
    let spaced = transcription.replace("<s/>", " ");
    for word in spaced.split(tltk::py_is_space).filter(|w| !w.is_empty()) {
        let mut word_phonemes = Vec::new();
        for syllable in word.split(['.', '+']) {
            word_phonemes.extend(syllable_phonemes(syllable, run));
        }
        if !word_phonemes.is_empty() {
            if !phonemes.is_empty() {
                phonemes.push(" ".into());
            }
            phonemes.extend(word_phonemes);
        }
    }
    if phonemes.is_empty() {
        tracing::warn!("No phonemes for Thai run: {run}");
    }
    phonemes
}

fn syllable_phonemes(syllable: &str, run: &str) -> Vec<String> {
    let (body, tone) = match syllable.chars().last() {
        Some(t) if TONES.contains(t) => (&syllable[..syllable.len() - t.len_utf8()], Some(t)),
        _ => (syllable, None),
    };
    let mut phonemes = Vec::new();
    for c in body.chars() {
        // TLTK's open o is U+1D10, which has no id; Piper reads it as ɔ.
        let c = if c == '\u{1d10}' { '\u{254}' } else { c };
        if !DEFAULT_SYMBOLS.contains(c) {
            tracing::warn!("Dropping untranscribed symbol {c:?} from Thai run: {run}");
            return Vec::new();
        }
        phonemes.push(c.to_string());
    }
    if phonemes.is_empty() {
        return phonemes;
    }
    if let Some(t) = tone {
        phonemes.push(t.to_string());
    }
    phonemes
}

/// Everything between two Thai runs: punctuation phonemes, and one word
/// break for anything else.
fn punctuation_phonemes(text: &str, phonemes: &mut Vec<String>) {
    let start = phonemes.len();
    for c in text.chars() {
        if PUNCTUATION.contains(c) {
            phonemes.push(c.to_string());
            continue;
        }
        if phonemes.len() == start || phonemes.last().is_some_and(|p| p != " ") {
            phonemes.push(" ".into());
        }
    }
}

/// Piper's `_normalize`.
fn normalize(text: &str) -> String {
    static SARA_AM: OnceLock<Regex> = OnceLock::new();
    let text: String = text
        .nfc()
        .map(|c| match c {
            '๐'..='๙' => char::from(b'0' + (c as u32 - '๐' as u32) as u8),
            'ฃ' => 'ข',
            'ฅ' => 'ค',
            other => other,
        })
        .collect();
    let text =
        regex(&SARA_AM, "\u{e4d}([\u{e48}-\u{e4b}]?)\u{e32}").replace_all(&text, "${1}\u{e33}");
    let text = text.replace("ฯลฯ", "ละ");
    let text = numbers_to_words(&text);
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                'ฯ' | '๏' | '๚' | '๛' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}'
            )
        })
        .collect()
}

/// Python's `\w`: letters, numbers and the underscore.
fn py_is_word(c: char) -> bool {
    use unicode_categories::UnicodeCategories;
    c == '_' || c.is_letter() || c.is_number()
}

fn is_digit(c: char) -> bool {
    numbers::decimal_digit(c).is_some()
}

/// Piper's `_numbers_to_words` (`[\s\x1c-\x1f]` is Python's `\s`,
/// `str.isspace`).
fn numbers_to_words(text: &str) -> String {
    static BAHT: OnceLock<Regex> = OnceLock::new();
    static PERCENT: OnceLock<Regex> = OnceLock::new();
    let text = ungroup_thousands(text);
    let baht = regex(&BAHT, r"฿[\s\x1c-\x1f]*(-?[\d.]+)");
    let text = baht.replace_all(&text, "${1} บาท");
    let percent = regex(&PERCENT, r"(-?[\d.]+)[\s\x1c-\x1f]*%");
    let text = percent.replace_all(&text, "${1} เปอร์เซ็นต์");
    spell_numbers(&text).replace('\u{200b}', " ")
}

/// `(?<=\d),(?=\d{3}\b)` removed: thousands separators inside a number.
fn ungroup_thousands(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let separator = c == ','
            && i > 0
            && is_digit(chars[i - 1])
            && chars.len() > i + 3
            && chars[i + 1..=i + 3].iter().all(|&d| is_digit(d))
            && chars.get(i + 4).is_none_or(|&n| !py_is_word(n));
        if !separator {
            out.push(c);
        }
    }
    out
}

/// `(?<!\w)-?\d+(?:\.\d+)?` replaced by its Thai spelling (nothing where
/// unicode-rbnf raises).
fn spell_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let free = i == 0 || !py_is_word(chars[i - 1]);
        let digits_at = if chars[i] == '-' && chars.get(i + 1).is_some_and(|&c| is_digit(c)) {
            Some(i + 1)
        } else if is_digit(chars[i]) {
            Some(i)
        } else {
            None
        };
        let (true, Some(start)) = (free, digits_at) else {
            out.push(chars[i]);
            i += 1;
            continue;
        };
        let mut end = start;
        while end < chars.len() && is_digit(chars[end]) {
            end += 1;
        }
        if chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(|&c| is_digit(c)) {
            end += 1;
            while end < chars.len() && is_digit(chars[end]) {
                end += 1;
            }
        }
        let number: String = chars[i..end].iter().collect();
        match numbers::spell(&number) {
            Some(words) => out.push_str(&words),
            None => tracing::warn!("Could not spell out number: {number}"),
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_after_stops_and_at_newlines() {
        assert_eq!(split_sentences("ก. ข\nค"), vec!["ก.", "ข", "ค"]);
        assert_eq!(split_sentences("ก.ข"), vec!["ก.ข"]);
        assert_eq!(split_sentences("ก! \n\nข"), vec!["ก!", "ข"]);
    }

    #[test]
    fn numbers_are_spelled_where_piper_spells_them() {
        assert_eq!(ungroup_thousands("1,250,000 และ 1,25"), "1250000 และ 1,25");
        // A hyphen after a word is not a minus sign.
        assert_eq!(spell_numbers("โควิด-19"), "โควิด-สิบ\u{200b}เก้า");
        assert_eq!(spell_numbers("ab12"), "ab12");
        assert_eq!(numbers_to_words("฿ 5"), "ห้า บาท");
    }
}

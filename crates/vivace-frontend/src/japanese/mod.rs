//! Piper's Japanese front end (`phoneme_type: japanese`): piper-tts 1.8
//! reads Japanese with pyopenjtalk-plus 0.4.1.post9, OpenJTalk with its own
//! rules around it. The stages, each ported and checked against it:
//!
//! - [`text2mecab`]: OpenJTalk's half-width to full-width conversion;
//! - [`mecab`]: MeCab over OpenJTalk's NAIST-JDIC;
//! - [`njd`]: the word list and its reading, digit, accent and devoicing
//!   passes, with pyopenjtalk-plus's chaining rule between them;
//! - [`postprocess`]: pyopenjtalk-plus's Python rules after NJD (the 「何」
//!   model, Sudachi's kanji readings and the iteration marks included);
//! - [`sudachi`]: SudachiPy's tokenizer, which those rules ask;
//! - [`labels`]: OpenJTalk's full-context labels;
//! - [`prosody`]: Piper's reading of the labels into IPA with pitch-accent
//!   marks.

pub mod labels;
pub mod mecab;
pub mod njd;
pub mod postprocess;
pub mod prosody;
pub mod sudachi;
pub mod text2mecab;

use std::path::Path;

use crate::error::Result;
use crate::thai::tltk::py_is_space;

/// OpenJTalk's text buffer (`TEXT2MECAB_BUFFER_SIZE` in pyopenjtalk-plus):
/// a sentence whose converted text does not fit is refused by
/// pyopenjtalk-plus, which Piper logs and skips.
pub const TEXT2MECAB_BUFFER_SIZE: usize = 16384;

/// The piece, in characters, a sentence too long for that buffer is read
/// in (4 bytes a character at most after `text2mecab`, so a piece fits).
pub const LONG_SENTENCE_PIECE: usize = 4000;

/// Piper's Japanese phonemizer over OpenJTalk's dictionary, with
/// pyopenjtalk-plus's 「何」 model when given one (without it, standalone
/// 何 keeps the dictionary's reading).
pub struct JapanesePhonemizer {
    mecab: mecab::Mecab,
    nani: Option<Box<dyn postprocess::NaniReading>>,
    sudachi: Option<sudachi::Sudachi>,
}

impl JapanesePhonemizer {
    /// Opens OpenJTalk's dictionary folder (`sys.dic`, `unk.dic`,
    /// `matrix.bin`, `char.bin`).
    pub fn load(dictionary: &Path) -> Result<Self> {
        Ok(Self {
            mecab: mecab::Mecab::open(dictionary)?,
            nani: None,
            sudachi: None,
        })
    }

    /// Reads standalone 何 with pyopenjtalk-plus's model (as Piper does,
    /// since piper-tts installs onnxruntime).
    pub fn with_nani(mut self, model: Box<dyn postprocess::NaniReading>) -> Self {
        self.nani = Some(model);
        self
    }

    /// Reads a kanji with several readings standing alone as Sudachi does
    /// (as Piper does: pyopenjtalk-plus asks Sudachi by default).
    pub fn with_sudachi(mut self, sudachi: sudachi::Sudachi) -> Self {
        self.sudachi = Some(sudachi);
        self
    }

    /// pyopenjtalk-plus's `run_mecab`: each morph as `surface,feature`,
    /// without the spaces (`記号,空白`); `None` when the text is too long
    /// for OpenJTalk's buffer.
    pub fn mecab_features(&self, text: &str) -> Option<Vec<String>> {
        let input = text2mecab::text2mecab(text);
        if input.len() >= TEXT2MECAB_BUFFER_SIZE {
            return None;
        }
        Some(
            self.mecab
                .parse(&input)
                .iter()
                .map(|m| {
                    format!(
                        "{},{}",
                        input.get(m.span.clone()).unwrap_or(""),
                        self.mecab.feature(m)
                    )
                })
                .filter(|f| !f.contains("記号,空白"))
                .collect(),
        )
    }

    /// pyopenjtalk-plus's `run_frontend` for one sentence: NJD, then its
    /// post-processing.
    pub fn run_frontend(&self, sentence: &str) -> Vec<njd::Feature> {
        self.mecab_features(sentence)
            .map_or_else(Vec::new, |mecab| self.frontend_from_mecab(sentence, &mecab))
    }

    /// OpenJTalk's own front end (`OpenJTalk.run_frontend`): MeCab, then
    /// NJD, without pyopenjtalk-plus's post-processing.
    pub fn openjtalk_frontend(&self, text: &str) -> Vec<njd::Feature> {
        self.mecab_features(text)
            .map_or_else(Vec::new, |mecab| njd::run(&mecab))
    }

    /// pyopenjtalk-plus's post-processing of NJD's words for `text`.
    pub fn postprocess(&self, text: &str, features: &mut Vec<njd::Feature>) {
        let reanalyze = |kanji: &str| self.openjtalk_frontend(kanji);
        let helpers = postprocess::Helpers {
            nani: self.nani.as_deref(),
            sudachi: self.sudachi.as_ref(),
            reanalyze: &reanalyze,
        };
        postprocess::apply(text, features, &helpers);
    }

    /// NJD and its post-processing on MeCab's features of `text`.
    fn frontend_from_mecab(&self, text: &str, mecab: &[String]) -> Vec<njd::Feature> {
        let mut features = njd::run(mecab);
        self.postprocess(text, &mut features);
        features
    }

    /// Piper's `JapanesePhonemizer.phonemize`: per sentence, IPA phonemes
    /// (one code point each) with the accent marks `↑ ↓ #`, `,` for pauses
    /// and `.` or `?` at the end; sentences without phonemes are dropped.
    ///
    /// A sentence too long for OpenJTalk's buffer, which pyopenjtalk-plus
    /// refuses and Piper then skips, is read in pieces of
    /// [`LONG_SENTENCE_PIECE`] characters instead, so that no text is lost.
    pub fn phonemize(&self, text: &str) -> Vec<Vec<String>> {
        split_sentences(text)
            .iter()
            .flat_map(|sentence| {
                if let Some(mecab) = self.mecab_features(sentence) {
                    return vec![(sentence.clone(), mecab)];
                }
                let chars: Vec<char> = sentence.chars().collect();
                chars
                    .chunks(LONG_SENTENCE_PIECE)
                    .map(|c| {
                        let piece: String = c.iter().collect();
                        let mecab = self.mecab_features(&piece).unwrap_or_default();
                        (piece, mecab)
                    })
                    .collect()
            })
            .map(|(text, mecab)| {
                let labels = labels::make_label(&self.frontend_from_mecab(&text, &mecab));
                prosody::ipa_phonemes(&prosody::phones_from_labels(&labels))
            })
            .filter(|phonemes| !phonemes.is_empty())
            .collect()
    }
}

/// Piper's `_split_sentences`: a sentence ends after a run of 。．！？!?
/// and any closing brackets, quotes or spaces after it; each is stripped
/// of surrounding white space, empty ones dropped. (Piper's decimal-point
/// guard looks for an ASCII `.`, which its pattern never matches, so it
/// never applies.)
pub fn split_sentences(text: &str) -> Vec<String> {
    let is_end = |c: char| matches!(c, '。' | '．' | '！' | '？' | '!' | '?');
    let is_closing = |c: char| {
        matches!(
            c,
            '」' | '』' | '）' | '】' | '〉' | '》' | '”' | '’' | '"' | '\'' | ')' | ']'
        ) || py_is_space(c)
    };
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if !is_end(c) {
            continue;
        }
        while chars.peek().is_some_and(|&(_, c)| is_end(c)) {
            chars.next();
        }
        while chars.peek().is_some_and(|&(_, c)| is_closing(c)) {
            chars.next();
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        let sentence = text[start..end].trim_matches(py_is_space);
        if !sentence.is_empty() {
            sentences.push(sentence.to_owned());
        }
        start = end;
    }
    let tail = text[start..].trim_matches(py_is_space);
    if !tail.is_empty() {
        sentences.push(tail.to_owned());
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::split_sentences;

    #[test]
    fn sentences_end_after_punctuation_and_closing_marks() {
        // Piper 1.8's _split_sentences gives these (run by hand).
        assert_eq!(
            split_sentences("「はい！」と言った。３．１４です？？ ok"),
            vec!["「はい！」", "と言った。", "３．", "１４です？？", "ok"]
        );
        assert!(split_sentences("  ").is_empty());
    }
}

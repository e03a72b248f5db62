//! Text → ids for MMS-TTS (Hugging Face VITS) voices, following
//! `transformers`' `VitsTokenizer` (version 5.24):
//!
//! 1. with `normalize`: vocabulary entries are kept as written, every other
//!    character is lower-cased;
//! 2. for `language = "ron"`, `ț` becomes `ţ`;
//! 3. with `is_uroman`, text that is not ASCII is romanized by uroman
//!    ([`crate::uroman`], attached with [`VitsTokenizer::with_uroman`]),
//!    without a language code, as `transformers` does when the `uroman`
//!    package is installed; a tokenizer without it refuses such text rather
//!    than speak the wrong thing;
//! 4. `phonemize` checkpoints (English VITS trained on espeak phonemes, not
//!    MMS) are refused;
//! 5. with `normalize`, characters outside the vocabulary are dropped and the
//!    ends trimmed of whitespace; without it, they are an error (the reference
//!    would map them to `<unk>`, an id outside the model's table);
//! 6. one id per character, and with `add_blank` the blank id 0 between and
//!    around them.
//!
//! One difference: step 1 tries multi-character vocabulary entries longest
//! first, where `transformers` tries them in file order; the two differ only
//! for a vocabulary with overlapping multi-character entries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::uroman::Uroman;

use crate::{Error, Result};

/// A VITS character tokenizer read from a checkpoint directory.
#[derive(Debug, Clone)]
pub struct VitsTokenizer {
    /// `vocab.json`: one entry per character (or special token).
    vocab: HashMap<String, i64>,
    /// Vocabulary entries longer than one character, longest first.
    multi_char: Vec<String>,
    add_blank: bool,
    normalize: bool,
    is_uroman: bool,
    language: Option<String>,
    /// The romanizer for `is_uroman` voices.
    uroman: Option<Arc<Uroman>>,
}

impl VitsTokenizer {
    /// Reads `vocab.json` and `tokenizer_config.json` from `dir`. Without
    /// the config `VitsTokenizer`'s defaults apply, and those include
    /// `phonemize = true`, which is refused: in practice the file is
    /// required (every MMS checkpoint ships it).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let vocab_path = dir.join("vocab.json");
        let vocab: HashMap<String, i64> = read_json(&vocab_path)?;
        if vocab.is_empty() {
            return Err(Error::TokenizerFile {
                path: vocab_path,
                reason: "the vocabulary is empty".into(),
            });
        }
        let config_path = dir.join("tokenizer_config.json");
        let config: serde_json::Value = if config_path.is_file() {
            read_json(&config_path)?
        } else {
            serde_json::Value::Null
        };
        let flag = |name: &str, default: bool| -> Result<bool> {
            match config.get(name) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(serde_json::Value::Bool(b)) => Ok(*b),
                Some(other) => Err(Error::TokenizerFile {
                    path: config_path.clone(),
                    reason: format!("`{name}` should be true or false, not {other}"),
                }),
            }
        };
        if flag("phonemize", true)? {
            return Err(Error::TokenizerFile {
                path: config_path.clone(),
                reason: "this checkpoint expects espeak phonemes (`phonemize: true`); Vivace \
                         supports character-based VITS checkpoints such as MMS-TTS"
                    .into(),
            });
        }
        let mut multi_char: Vec<String> = vocab
            .keys()
            .filter(|k| k.chars().count() > 1)
            .cloned()
            .collect();
        multi_char.sort_by_key(|k| std::cmp::Reverse(k.chars().count()));
        Ok(Self {
            multi_char,
            add_blank: flag("add_blank", true)?,
            normalize: flag("normalize", true)?,
            is_uroman: flag("is_uroman", false)?,
            uroman: None,
            language: config
                .get("language")
                .and_then(|l| l.as_str())
                .map(str::to_string),
            vocab,
        })
    }

    /// The checkpoint's language code (`language` in `tokenizer_config.json`).
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// Whether the voice reads romanized text (`is_uroman`).
    pub fn is_uroman(&self) -> bool {
        self.is_uroman
    }

    /// Romanizes non-Latin text with `uroman` before tokenizing (for
    /// `is_uroman` voices).
    pub fn with_uroman(mut self, uroman: Arc<Uroman>) -> Self {
        self.uroman = Some(uroman);
        self
    }

    /// The text as the model will read it (steps 1–5 above): the characters
    /// that get ids.
    pub fn prepare(&self, text: &str) -> Result<Vec<char>> {
        let mut text = if self.normalize {
            self.lowercase_outside_vocab(text)
        } else {
            text.to_string()
        };
        if self.language.as_deref() == Some("ron") {
            text = text.replace('ț', "ţ");
        }
        if self.is_uroman && !text.is_ascii() {
            match &self.uroman {
                Some(uroman) => text = uroman.romanize(&text, None),
                None => {
                    let example = text.chars().find(|c| !c.is_ascii()).unwrap_or('?');
                    return Err(Error::Untokenizable(format!(
                        "this voice reads romanized text (is_uroman): \"{example}\" and the rest \
                         of the non-Latin script must be romanized first (`vivace romanize`), or \
                         the voice loaded with uroman's data (`vivace download uroman`)"
                    )));
                }
            }
        }
        let chars: Vec<char> = if self.normalize {
            let kept: String = text.chars().filter(|&c| self.id(c).is_some()).collect();
            kept.trim().chars().collect()
        } else {
            let chars: Vec<char> = text.chars().collect();
            if let Some(c) = chars.iter().find(|&&c| self.id(c).is_none()) {
                return Err(Error::Untokenizable(format!(
                    "character {c:?} is not in this voice's vocabulary (the checkpoint does \
                     not normalize its input)"
                )));
            }
            chars
        };
        Ok(chars)
    }

    /// The model's input ids for `text`; an error when nothing in it can be
    /// spoken by this voice.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let chars = self.prepare(text)?;
        if chars.is_empty() {
            return Err(Error::Untokenizable(format!(
                "none of the characters of {text:?} is in this voice's vocabulary{}",
                match &self.language {
                    Some(l) => format!(" (language {l})"),
                    None => String::new(),
                }
            )));
        }
        Ok(self.encode_prepared(&chars))
    }

    /// The id of a one-character vocabulary entry.
    /// The ids of characters [`Self::prepare`] returned, with the blank
    /// interleaved when the voice adds blanks (characters without an id,
    /// which `prepare` never returns, are skipped).
    pub fn encode_prepared(&self, chars: &[char]) -> Vec<i64> {
        let mut ids = Vec::with_capacity(2 * chars.len() + 1);
        if self.add_blank {
            ids.push(0);
        }
        for id in chars.iter().filter_map(|&c| self.id(c)) {
            ids.push(id);
            if self.add_blank {
                ids.push(0);
            }
        }
        ids
    }

    fn id(&self, c: char) -> Option<i64> {
        self.vocab.get(c.encode_utf8(&mut [0; 4]) as &str).copied()
    }

    /// Step 1: vocabulary entries as written, everything else lower-cased.
    fn lowercase_outside_vocab(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'outer: while let Some(c) = rest.chars().next() {
            for word in &self.multi_char {
                if rest.starts_with(word.as_str()) {
                    out.push_str(word);
                    rest = &rest[word.len()..];
                    continue 'outer;
                }
            }
            if self.id(c).is_some() {
                out.push(c);
            } else {
                out.extend(c.to_lowercase());
            }
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::TokenizerFile {
        path: path.clone(),
        reason: format!("cannot read it ({e})"),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::TokenizerFile {
        path: path.clone(),
        reason: format!("not valid JSON of the expected shape ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(config: &str) -> (tempfile::TempDir, VitsTokenizer) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("vocab.json"),
            r#"{"_": 0, "a": 1, "b": 2, " ": 3, "ţ": 4, "Q": 5}"#,
        )
        .expect("vocab");
        std::fs::write(dir.path().join("tokenizer_config.json"), config).expect("config");
        let tok = VitsTokenizer::from_dir(dir.path()).expect("tokenizer");
        (dir, tok)
    }

    #[test]
    fn normalizes_filters_and_interleaves_blanks() {
        let (_dir, tok) =
            tokenizer(r#"{"add_blank": true, "normalize": true, "phonemize": false}"#);
        // "A" is lower-cased, "Q" is in the vocabulary so it stays, "!" drops,
        // and the trailing space is trimmed.
        assert_eq!(
            tok.encode(" AbQ! ").expect("ids"),
            vec![0, 1, 0, 2, 0, 5, 0]
        );
        assert!(matches!(tok.encode("xyz!"), Err(Error::Untokenizable(_))));
    }

    #[test]
    fn romanian_cedilla_and_no_blanks() {
        let (_dir, tok) = tokenizer(
            r#"{"add_blank": false, "normalize": true, "phonemize": false, "language": "ron"}"#,
        );
        assert_eq!(tok.encode("aț b").expect("ids"), vec![1, 4, 3, 2]);
    }

    #[test]
    fn uroman_voices_refuse_unromanized_text() {
        let (_dir, tok) =
            tokenizer(r#"{"normalize": true, "phonemize": false, "is_uroman": true}"#);
        assert_eq!(
            tok.encode("ab").expect("romanized text is fine"),
            vec![0, 1, 0, 2, 0]
        );
        let err = tok
            .encode("ab ж")
            .expect_err("Cyrillic needs uroman")
            .to_string();
        assert!(err.contains("uroman") && err.contains('ж'), "{err}");
    }

    #[test]
    fn phonemizing_checkpoints_and_bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("vocab.json"), r#"{"a": 0}"#).expect("vocab");
        // Without tokenizer_config.json, VitsTokenizer's default is phonemize = true.
        let err = VitsTokenizer::from_dir(dir.path())
            .expect_err("phonemize")
            .to_string();
        assert!(err.contains("phonemize"), "{err}");
        std::fs::write(dir.path().join("vocab.json"), "[1, 2]").expect("vocab");
        let err = VitsTokenizer::from_dir(dir.path())
            .expect_err("bad vocab")
            .to_string();
        assert!(err.contains("vocab.json"), "{err}");
        std::fs::remove_file(dir.path().join("vocab.json")).expect("rm");
        assert!(VitsTokenizer::from_dir(dir.path()).is_err());
    }

    #[test]
    fn without_normalization_unknown_characters_are_errors() {
        let (_dir, tok) = tokenizer(r#"{"normalize": false, "phonemize": false}"#);
        assert_eq!(tok.encode("ab").expect("ids"), vec![0, 1, 0, 2, 0]);
        assert!(tok.encode("aB").is_err());
    }
}

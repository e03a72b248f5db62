//! Kokoro's vocabulary: one token id per phoneme character, read from the
//! model's `config.json`/`vocab.json` (`{"vocab": {"ə": 83, …}}`, hexgrad's
//! layout). Characters outside it are dropped, as kokoro-onnx drops them.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Phoneme character → token id.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    ids: HashMap<char, i64>,
}

impl Vocab {
    /// Reads the `vocab` object of the JSON file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::TokenizerFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        Self::from_json(&text).map_err(bad)
    }

    /// Parses the `vocab` object of a Kokoro config; the reason on failure.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let table = json
            .get("vocab")
            .and_then(|v| v.as_object())
            .ok_or("no `vocab` object (expected Kokoro's config.json layout)")?;
        let mut ids = HashMap::with_capacity(table.len());
        for (key, value) in table {
            let mut chars = key.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!("vocab key {key:?} is not one character"));
            };
            let id = value
                .as_i64()
                .filter(|id| *id > 0)
                .ok_or_else(|| format!("vocab id of {key:?} is not a positive integer"))?;
            ids.insert(c, id);
        }
        if ids.is_empty() {
            return Err("the vocab is empty".into());
        }
        Ok(Self { ids })
    }

    /// Whether `c` has a token.
    pub fn contains(&self, c: char) -> bool {
        self.ids.contains_key(&c)
    }

    /// The ids of `phonemes`' characters, unknown ones dropped.
    pub fn ids(&self, phonemes: &str) -> Vec<i64> {
        phonemes
            .chars()
            .filter_map(|c| self.ids.get(&c).copied())
            .collect()
    }

    /// The largest id (the embedding table must have more rows).
    pub fn max_id(&self) -> i64 {
        self.ids.values().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kokoro_layout_and_drops_unknown_characters() {
        let vocab = Vocab::from_json(r#"{"vocab": {"a": 43, " ": 16, "ˈ": 156}}"#).unwrap();
        assert_eq!(vocab.ids("ˈa xa"), [156, 43, 16, 43]);
        assert_eq!(vocab.max_id(), 156);
        assert!(Vocab::from_json(r#"{"vocab": {"ab": 1}}"#).is_err());
        assert!(Vocab::from_json(r#"{"n_token": 178}"#).is_err());
        assert!(Vocab::from_json(r#"{"vocab": {"a": 0}}"#).is_err());
    }
}

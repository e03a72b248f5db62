//! Chatterbox's Chinese front end (`ChineseCangjieConverter`): every
//! "other letter" (Unicode category Lo) found in the published Cangjie
//! table `Cangjie5_TC.json` is spelled out as its Cangjie code, one
//! `[cj_x]` token per letter, then `[cj_.]`; a code shared by several
//! glyphs gets the glyph's index among them appended (from 1; the first
//! glyph has none). Other characters pass unchanged.
//!
//! The reference first segments the text into words with spacy-pkuseg and
//! joins them with spaces. Its model is fetched from GitHub on first use
//! and ships in no registry package, so Vivace cannot run it: it skips
//! segmentation, as the reference does when pkuseg is missing, and says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use unicode_categories::UnicodeCategories;

use crate::{Error, Result};

/// The table's file name, beside the multilingual tokenizer.
pub const CANGJIE_FILE: &str = "Cangjie5_TC.json";

/// Glyph to Cangjie code, with each code's glyphs in table order.
#[derive(Debug, Clone, Default)]
pub struct CangjieTable {
    code_of: HashMap<char, String>,
    /// Every word under a code, multi-character ones included: they
    /// count in a glyph's index, as in the reference.
    words_of: HashMap<String, Vec<String>>,
    path: PathBuf,
}

impl CangjieTable {
    /// Reads `Cangjie5_TC.json`: a JSON list of `"glyph\tcode[\t…]"`
    /// strings. A glyph listed twice keeps its last code, as the
    /// reference's dictionary does.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::TokenizerFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let entries: Vec<String> = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a JSON list of \"glyph<TAB>code\" strings: {e}"
            ))
        })?;
        let mut table = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        for (n, entry) in entries.iter().enumerate() {
            let mut fields = entry.split('\t');
            let (Some(word), Some(code)) = (fields.next(), fields.next()) else {
                return Err(bad(format!(
                    "entry {n} ({entry:?}) is not \"glyph<TAB>code\""
                )));
            };
            table
                .words_of
                .entry(code.to_string())
                .or_default()
                .push(word.to_string());
            // Only single glyphs are ever looked up.
            let mut chars = word.chars();
            if let (Some(glyph), None) = (chars.next(), chars.next()) {
                table.code_of.insert(glyph, code.to_string());
            }
        }
        Ok(table)
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `glyph`'s code with its index suffix, if the table has it.
    fn encode(&self, glyph: char) -> Option<String> {
        let code = self.code_of.get(&glyph)?;
        let mut buf = [0u8; 4];
        let glyph: &str = glyph.encode_utf8(&mut buf);
        let index = self
            .words_of
            .get(code)
            .and_then(|words| words.iter().position(|w| w == glyph))
            .unwrap_or(0);
        Some(match index {
            0 => code.clone(),
            i => format!("{code}{i}"),
        })
    }

    /// The converter's output for `text` (not segmented).
    pub fn convert(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() * 4);
        for c in text.chars() {
            match c.is_letter_other().then(|| self.encode(c)).flatten() {
                Some(code) => {
                    for letter in code.chars() {
                        out.push_str("[cj_");
                        out.push(letter);
                        out.push(']');
                    }
                    out.push_str("[cj_.]");
                }
                None => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_codes_get_the_glyph_index_and_other_characters_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CANGJIE_FILE);
        std::fs::write(
            &path,
            r#"["你\tonf", "好\tvnd", "妳\tvnd", "好\tvnd\textra", "中文\tlyk", "中\tlyk"]"#,
        )
        .expect("write");
        let table = CangjieTable::from_file(&path).expect("table");
        // 好 is first under vnd (listed twice: index of its first place).
        assert_eq!(
            table.convert("你好，妳!"),
            "[cj_o][cj_n][cj_f][cj_.][cj_v][cj_n][cj_d][cj_.]，[cj_v][cj_n][cj_d][cj_1][cj_.]!"
        );
        // A multi-character word under the same code counts in the index.
        assert_eq!(table.convert("中"), "[cj_l][cj_y][cj_k][cj_1][cj_.]");
        // A glyph outside the table passes.
        assert_eq!(table.convert("龍a"), "龍a");
        std::fs::write(&path, r#"["no tab"]"#).expect("write");
        let err = CangjieTable::from_file(&path).expect_err("bad entry");
        assert!(err.to_string().contains("no tab"), "{err}");
    }
}

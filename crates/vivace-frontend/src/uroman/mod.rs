//! uroman, the universal romanizer Meta's MMS-TTS checkpoints expect their
//! text through (`is_uroman` in their tokenizer config): any script to the
//! Latin alphabet, ported from the `uroman` Python package (1.3.1.1, Ulf
//! Hermjakob, USC ISI; MIT-style licence) and reading its data files
//! unchanged (`tables`), which the voice store fetches from PyPI.
//!
//! What is ported: the rule lattice with its context tests (start and end
//! of word, Thai syllable ends), abugida vowels, Hangul, the Japanese,
//! Thai, Coptic, virama and capitalization heuristics, compatibility
//! decompositions, numerals as digits (and runs of digits as one number),
//! and the single-character fallbacks. Not ported yet: the arithmetic of
//! numeral words (Chinese 二十三 → 23, Ethiopic and Tamil number words),
//! Tibetan's vowel placement and Braille.

mod lattice;
mod tables;

use std::path::Path;

use crate::error::Result;
use lattice::Lattice;
use tables::Tables;

/// uroman with its data loaded (about 0.2 s; load once, romanize often).
#[derive(Debug)]
pub struct Uroman {
    tables: Tables,
}

impl Uroman {
    /// Reads uroman's data folder (the package's `uroman/data/`).
    pub fn load(data_dir: &Path) -> Result<Self> {
        Ok(Self {
            tables: Tables::load(data_dir)?,
        })
    }

    /// Romanizes `text` as `Uroman().romanize_string(text, lcode)` does:
    /// the whole string as one lattice. `lcode` is an ISO 639-3 code
    /// (`hin`, `ukr`, ...) that selects language-specific rules.
    pub fn romanize(&self, text: &str, lcode: Option<&str>) -> String {
        self.romanize_whole(text, lcode)
    }

    /// Romanizes `text` as the `uroman` command does (its cache on): cut
    /// at spaces and at `。` and `་` (with the `.,;` around them), each piece
    /// romanized on its own.
    pub fn romanize_by_token(&self, text: &str, lcode: Option<&str>) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let mut start = 0;
        while let Some((at, end)) = next_delimiter(&chars, start) {
            out += &self.romanize_whole(&chars[start..at].iter().collect::<String>(), lcode);
            out += &self.romanize_whole(&chars[at..end].iter().collect::<String>(), lcode);
            start = end;
        }
        out += &self.romanize_whole(&chars[start..].iter().collect::<String>(), lcode);
        out
    }

    fn romanize_whole(&self, text: &str, lcode: Option<&str>) -> String {
        Lattice::new(self, text, lcode).romanize()
    }
}

/// The first delimiter at or after `from`, as uroman's
/// `([.,; ]*[ 。་][.,; ]*)` after a lazy prefix finds it: a run of `.,; `
/// that holds a space or is followed by `。` or `་` (with the run after
/// that). Returns its start and end.
fn next_delimiter(chars: &[char], from: usize) -> Option<(usize, usize)> {
    let in_run = |c: char| matches!(c, '.' | ',' | ';' | ' ');
    let mut i = from;
    while i < chars.len() {
        let mut run_end = i;
        while run_end < chars.len() && in_run(chars[run_end]) {
            run_end += 1;
        }
        if run_end < chars.len() && matches!(chars[run_end], '。' | '་') {
            let mut end = run_end + 1;
            while end < chars.len() && in_run(chars[end]) {
                end += 1;
            }
            return Some((i, end));
        }
        if chars[i..run_end].contains(&' ') {
            return Some((i, run_end));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delimiters(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut start = 0;
        while let Some((at, end)) = next_delimiter(&chars, start) {
            out.push(chars[at..end].iter().collect());
            start = end;
        }
        out
    }

    /// Python: `re.match(r'(.*?)([.,; ]*[ 。་][.,; ]*)(.*)$', s)` in a loop.
    #[test]
    fn the_command_cuts_text_where_uroman_does() {
        assert_eq!(delimiters("a, b. c"), [", ", ". "]);
        assert_eq!(delimiters("你好。世界"), ["。"]);
        assert_eq!(delimiters("x.,。. y"), [".,。. "]);
        assert_eq!(delimiters("3.14,5"), Vec::<String>::new());
        assert_eq!(delimiters("a  b"), ["  "]);
    }
}

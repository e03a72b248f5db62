//! Sudachi, as pyopenjtalk-plus asks it for the reading of a kanji that
//! has several (`sudachi_analyze`): SudachiPy 0.7's tokenizer in split
//! mode C with its default configuration over `sudachidict_core`'s system
//! dictionary.
//!
//! - [`dictionary`]: the binary dictionary, memory-mapped;
//! - [`categories`]: `char.def` and `unk.def`;
//! - [`input`]: the input text plugins (normalization, prolonged sound
//!   marks, yomigana) and the map back to the original text;
//! - [`lattice`]: the lattice and its best path.
//!
//! The two path-rewrite plugins (`JoinNumericPlugin`, `JoinKatakanaOovPlugin`)
//! are not run: they only join runs of numerals or katakana into one word,
//! which never holds a single kanji, so they cannot change the readings
//! pyopenjtalk-plus takes (single kanji words).

pub mod categories;
pub mod dictionary;
pub mod input;
pub mod lattice;

use std::path::Path;

use crate::error::Result;
use categories::Categories;
use dictionary::Dictionary;
use input::{InputText, Rewrite, TooLong};
use lattice::Word;

/// The files Sudachi reads, in one folder: `sudachidict_core`'s dictionary
/// and SudachiPy's three definition files.
pub const SUDACHI_FILES: [&str; 4] = ["system.dic", "char.def", "unk.def", "rewrite.def"];

/// A word of the best path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Morpheme {
    /// The original text it covers (with any yomigana deleted after it).
    pub surface: String,
    /// Its reading form: the dictionary's, or an unknown word's (edited)
    /// text.
    pub reading: String,
}

/// SudachiPy's tokenizer over its system dictionary.
pub struct Sudachi {
    dictionary: Dictionary,
    categories: Categories,
    rewrite: Rewrite,
}

impl Sudachi {
    /// Opens the folder holding [`SUDACHI_FILES`].
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            dictionary: Dictionary::open(&dir.join("system.dic"))?,
            categories: Categories::load(&dir.join("char.def"), &dir.join("unk.def"))?,
            rewrite: Rewrite::load(&dir.join("rewrite.def"))?,
        })
    }

    /// The words of `text` (split mode C, before path rewriting); `TooLong`
    /// past SudachiPy's limit of 49,149 bytes, which it refuses too.
    pub fn tokenize(&self, text: &str) -> std::result::Result<Vec<Morpheme>, TooLong> {
        let input = InputText::build(text, &self.rewrite, &self.categories)?;
        let chars: Vec<char> = input.edited.chars().collect();
        let mut starts: Vec<usize> = input.edited.char_indices().map(|(b, _)| b).collect();
        starts.push(input.edited.len());
        let path = lattice::best_path(
            &self.dictionary,
            &self.categories,
            &chars,
            input.edited.as_bytes(),
            &starts,
        );
        Ok(path
            .iter()
            .map(|node| {
                let (b, e) = (starts[node.begin], starts[node.end]);
                let surface = input
                    .to_original
                    .get(b)
                    .zip(input.to_original.get(e))
                    .and_then(|(&ob, &oe)| input.original.get(ob..oe))
                    .unwrap_or_default()
                    .to_owned();
                let reading = match node.word {
                    Word::Entry(entry) => self.dictionary.reading(entry),
                    Word::Unknown => input.edited[b..e].to_owned(),
                };
                Morpheme { surface, reading }
            })
            .collect())
    }
}

//! Sudachi's character categories (`char.def`) and unknown-word entries
//! (`unk.def`), as SudachiPy 0.7 reads them: a character's categories are
//! the union of every range that holds it (DEFAULT when none does), and
//! each category says whether unknown words are made even where the
//! dictionary has a word (`invoke`), whether a run of it makes one word
//! (`group`), and up to how many characters short words are made.

use std::path::Path;

use crate::error::{Error, Result};

/// One category's bit.
pub type Category = u32;

/// No other category.
pub const DEFAULT: Category = 1;
/// White space.
pub const SPACE: Category = 1 << 1;
/// Kanji.
pub const KANJI: Category = 1 << 2;
/// Symbols.
pub const SYMBOL: Category = 1 << 3;
/// Digits.
pub const NUMERIC: Category = 1 << 4;
/// Latin letters.
pub const ALPHA: Category = 1 << 5;
/// Hiragana.
pub const HIRAGANA: Category = 1 << 6;
/// Katakana.
pub const KATAKANA: Category = 1 << 7;
/// Kanji numerals.
pub const KANJINUMERIC: Category = 1 << 8;
/// Greek letters.
pub const GREEK: Category = 1 << 9;
/// Cyrillic letters.
pub const CYRILLIC: Category = 1 << 10;
/// No unknown word begins here.
pub const NOOOVBOW: Category = 1 << 30;
/// No unknown word begins after this character.
pub const NOOOVEOW: Category = 1 << 31;
/// Every category bit (`ALL`), the two flags excepted.
const ALL: Category = (1 << 30) - 1;

fn category(name: &str) -> Option<Category> {
    Some(match name {
        "DEFAULT" => DEFAULT,
        "SPACE" => SPACE,
        "KANJI" => KANJI,
        "SYMBOL" => SYMBOL,
        "NUMERIC" => NUMERIC,
        "ALPHA" => ALPHA,
        "HIRAGANA" => HIRAGANA,
        "KATAKANA" => KATAKANA,
        "KANJINUMERIC" => KANJINUMERIC,
        "GREEK" => GREEK,
        "CYRILLIC" => CYRILLIC,
        "USER1" => 1 << 11,
        "USER2" => 1 << 12,
        "USER3" => 1 << 13,
        "USER4" => 1 << 14,
        "NOOOVBOW" => NOOOVBOW,
        "NOOOVEOW" => NOOOVEOW,
        "ALL" => ALL,
        _ => return None,
    })
}

/// A category's unknown-word behaviour (`char.def`'s property lines).
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Unknown words are made even where the dictionary has a word.
    pub invoke: bool,
    /// A run of the category makes one unknown word.
    pub group: bool,
    /// Unknown words of 1 to `length` characters are made.
    pub length: usize,
}

/// An unknown word's connection ids and cost (`unk.def`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownWord {
    /// Left connection id.
    pub left: i16,
    /// Right connection id.
    pub right: i16,
    /// Word cost.
    pub cost: i16,
}

/// `char.def` and `unk.def`.
pub struct Categories {
    /// The categories of every code point below U+10000.
    bmp: Vec<Category>,
    /// The ranges above it: (first, last, categories).
    astral: Vec<(u32, u32, Category)>,
    /// Per category bit (0 to 14), its behaviour, if `char.def` gives one.
    behaviour: [Option<Behaviour>; 15],
    /// Per category bit, its unknown words, in `unk.def`'s order.
    unknown: [Vec<UnknownWord>; 15],
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::JapaneseData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn code_point(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl Categories {
    /// Reads `char.def` and `unk.def`.
    pub fn load(char_def: &Path, unk_def: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(char_def)
            .map_err(|e| bad(char_def, format!("cannot read it ({e})")))?;
        let mut ranges = Vec::new();
        let mut behaviour = [None; 15];
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let columns: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with("0x") {
                let (first, last) = match columns[0].split_once("..") {
                    Some((a, b)) => (code_point(a), code_point(b)),
                    None => (code_point(columns[0]), code_point(columns[0])),
                };
                let (Some(first), Some(last)) = (first, last) else {
                    return Err(bad(char_def, format!("bad code point range in `{line}`")));
                };
                let mut bits = 0;
                for name in columns[1..].iter().take_while(|c| !c.starts_with('#')) {
                    bits |= category(name)
                        .ok_or_else(|| bad(char_def, format!("unknown category `{name}`")))?;
                }
                ranges.push((first, last, bits));
            } else {
                let parsed = (columns.len() >= 4)
                    .then(|| (category(columns[0]), columns[3].parse::<usize>().ok()));
                let Some((Some(bit), Some(length))) = parsed else {
                    return Err(bad(char_def, format!("bad category line `{line}`")));
                };
                let index = bit.trailing_zeros() as usize;
                if let Some(slot) = behaviour.get_mut(index) {
                    *slot = Some(Behaviour {
                        invoke: columns[1] == "1",
                        group: columns[2] == "1",
                        length,
                    });
                }
            }
        }
        let mut bmp = vec![0; 0x10000];
        let mut astral = Vec::new();
        for &(first, last, bits) in &ranges {
            for c in first..=last.min(0xffff) {
                bmp[c as usize] |= bits;
            }
            if last > 0xffff {
                astral.push((first.max(0x10000), last, bits));
            }
        }
        let text = std::fs::read_to_string(unk_def)
            .map_err(|e| bad(unk_def, format!("cannot read it ({e})")))?;
        let mut unknown: [Vec<UnknownWord>; 15] = Default::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let columns: Vec<&str> = line.split(',').collect();
            let number = |k: usize| columns.get(k).and_then(|c| c.trim().parse::<i16>().ok());
            let (Some(bit), Some(left), Some(right), Some(cost)) = (
                columns.first().and_then(|c| category(c.trim())),
                number(1),
                number(2),
                number(3),
            ) else {
                return Err(bad(unk_def, format!("bad line `{line}`")));
            };
            if let Some(words) = unknown.get_mut(bit.trailing_zeros() as usize) {
                words.push(UnknownWord { left, right, cost });
            }
        }
        Ok(Self {
            bmp,
            astral,
            behaviour,
            unknown,
        })
    }

    /// A character's categories.
    pub fn of(&self, c: char) -> Category {
        let code = c as u32;
        let bits = match self.bmp.get(code as usize) {
            Some(&bits) => bits,
            None => self
                .astral
                .iter()
                .filter(|&&(first, last, _)| (first..=last).contains(&code))
                .fold(0, |acc, &(_, _, bits)| acc | bits),
        };
        if bits == 0 {
            DEFAULT
        } else {
            bits
        }
    }

    /// The behaviour of category bit `index` (0 to 14).
    pub fn behaviour(&self, index: usize) -> Option<Behaviour> {
        self.behaviour.get(index).copied().flatten()
    }

    /// The unknown words of category bit `index`.
    pub fn unknown_words(&self, index: usize) -> &[UnknownWord] {
        self.unknown.get(index).map_or(&[], Vec::as_slice)
    }
}

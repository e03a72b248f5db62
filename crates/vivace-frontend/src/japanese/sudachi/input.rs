//! Sudachi's input text (SudachiPy 0.7's default plugins, in order): each
//! character lower-cased and NFKC-normalized on its own unless
//! `rewrite.def` exempts it or rewrites it with the next (half-width voiced
//! kana); runs of two or more prolonged-sound marks made one ー; and
//! yomigana in brackets after a kanji (`漢(かん)`) deleted. A map from the
//! edited text's bytes back to the original's keeps every word's surface a
//! slice of what the user wrote.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use super::categories::{Categories, HIRAGANA, KANJI, KATAKANA};
use crate::error::{Error, Result};

/// The longest input SudachiPy takes, in UTF-8 bytes (65535 / 4 × 3).
pub const MAX_INPUT_BYTES: usize = 49_149;

/// The longest the edited text may grow to, in bytes.
const MAX_EDITED_BYTES: usize = 65_535;

/// The marks `ProlongedSoundMarkPlugin` joins.
const PROLONGED_SOUND_MARKS: [char; 5] = ['ー', '-', '⁓', '〜', '〰'];

/// `rewrite.def`: characters kept as they are, and pairs rewritten.
pub struct Rewrite {
    ignore: HashSet<char>,
    replace: HashMap<String, String>,
    longest_key: usize,
}

impl Rewrite {
    /// Reads `rewrite.def`.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::JapaneseData {
            path: path.to_path_buf(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
        let mut ignore = HashSet::new();
        let mut replace = HashMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let columns: Vec<&str> = line.split_whitespace().collect();
            match columns.as_slice() {
                [one] => {
                    let mut chars = one.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => ignore.insert(c),
                        _ => return Err(bad(format!("`{line}` is not one character"))),
                    };
                }
                [from, to] => {
                    replace.insert((*from).to_owned(), (*to).to_owned());
                }
                _ => return Err(bad(format!("`{line}` has more than two columns"))),
            }
        }
        let longest_key = replace.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        Ok(Self {
            ignore,
            replace,
            longest_key,
        })
    }
}

/// Why a text cannot be analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// The text being analysed: the original, the edited text, and for each
/// byte of the edited text (and its end) the original byte it came from.
pub struct InputText<'a> {
    /// The text as given.
    pub original: &'a str,
    /// The text the dictionary is searched in.
    pub edited: String,
    /// `edited` byte → `original` byte.
    pub to_original: Vec<usize>,
}

impl<'a> InputText<'a> {
    /// Runs the three plugins over `text`.
    pub fn build(
        text: &'a str,
        rewrite: &Rewrite,
        categories: &Categories,
    ) -> std::result::Result<Self, TooLong> {
        if text.len() > MAX_INPUT_BYTES {
            return Err(TooLong);
        }
        let mut input = Self {
            original: text,
            edited: text.to_owned(),
            to_original: (0..=text.len()).collect(),
        };
        let edits = input.normalize(rewrite);
        input.apply(&edits)?;
        let edits = input.prolonged_sound_marks();
        input.apply(&edits)?;
        let edits = input.yomigana(categories);
        input.apply(&edits)?;
        Ok(input)
    }

    /// Applies edits (sorted, disjoint byte ranges of `edited` and their
    /// replacements): a replacement's first byte maps to the start of what
    /// it replaced, its other bytes to the end; a deletion maps nothing, so
    /// deleted text joins the word before it.
    fn apply(
        &mut self,
        edits: &[(std::ops::Range<usize>, String)],
    ) -> std::result::Result<(), TooLong> {
        if edits.is_empty() {
            return Ok(());
        }
        let mut edited = String::with_capacity(self.edited.len());
        let mut map = Vec::with_capacity(self.to_original.len());
        let mut start = 0;
        for (range, replacement) in edits {
            edited.push_str(&self.edited[start..range.start]);
            map.extend_from_slice(&self.to_original[start..range.start]);
            start = range.end;
            if !replacement.is_empty() {
                edited.push_str(replacement);
                map.push(self.to_original[range.start]);
                map.extend(std::iter::repeat_n(
                    self.to_original[range.end],
                    replacement.len() - 1,
                ));
            }
            if edited.len() > MAX_EDITED_BYTES {
                return Err(TooLong);
            }
        }
        edited.push_str(&self.edited[start..]);
        map.extend_from_slice(&self.to_original[start..]);
        if edited.len() > MAX_EDITED_BYTES {
            return Err(TooLong);
        }
        if let Some(first) = map.first_mut() {
            *first = 0;
        }
        self.edited = edited;
        self.to_original = map;
        Ok(())
    }

    /// `DefaultInputTextPlugin`: `rewrite.def`'s pairs first; else an
    /// upper-case character is lower-cased (fully), and one that is not
    /// NFKC by itself (nor exempt) is NFKC-normalized on its own. Nothing
    /// changes when the result starts with the same character.
    fn normalize(&self, rewrite: &Rewrite) -> Vec<(std::ops::Range<usize>, String)> {
        let chars: Vec<(usize, char)> = self.edited.char_indices().collect();
        let byte = |k: usize| chars.get(k).map_or(self.edited.len(), |&(b, _)| b);
        let mut edits = Vec::new();
        let mut i = 0;
        let mut key = String::new();
        while i < chars.len() {
            let pair = (1..=rewrite.longest_key.min(chars.len() - i))
                .rev()
                .find_map(|n| {
                    key.clear();
                    key.extend(chars[i..i + n].iter().map(|&(_, c)| c));
                    rewrite.replace.get(&key).map(|to| (n, to.clone()))
                });
            if let Some((n, to)) = pair {
                edits.push((byte(i)..byte(i + n), to));
                i += n;
                continue;
            }
            let c = chars[i].1;
            let upper = c.is_uppercase();
            let not_nfkc = !rewrite.ignore.contains(&c)
                && is_nfkc_quick(std::iter::once(c)) != IsNormalized::Yes;
            let out: Option<String> = match (upper, not_nfkc) {
                (true, true) => Some(c.to_lowercase().collect::<String>().nfkc().collect()),
                (true, false) => Some(c.to_lowercase().collect()),
                (false, true) => Some(std::iter::once(c).nfkc().collect()),
                (false, false) => None,
            };
            if let Some(out) = out.filter(|o| !o.is_empty() && !o.starts_with(c)) {
                edits.push((byte(i)..byte(i + 1), out));
            }
            i += 1;
        }
        edits
    }

    /// `ProlongedSoundMarkPlugin`: each run of two or more of ー - ⁓ 〜 〰
    /// becomes one ー.
    fn prolonged_sound_marks(&self) -> Vec<(std::ops::Range<usize>, String)> {
        let mut edits = Vec::new();
        let mut run: Option<(usize, usize, usize)> = None; // start, end, count
        let mut close = |run: &mut Option<(usize, usize, usize)>| {
            if let Some((start, end, count)) = run.take() {
                if count >= 2 {
                    edits.push((start..end, "ー".to_owned()));
                }
            }
        };
        for (b, c) in self.edited.char_indices() {
            if PROLONGED_SOUND_MARKS.contains(&c) {
                let end = b + c.len_utf8();
                run = Some(match run {
                    Some((start, _, count)) => (start, end, count + 1),
                    None => (b, end, 1),
                });
            } else {
                close(&mut run);
            }
        }
        close(&mut run);
        edits
    }

    /// `IgnoreYomiganaPlugin`: after a kanji, `(` or `（`, one to four kana
    /// and `)` or `）` are deleted.
    fn yomigana(&self, categories: &Categories) -> Vec<(std::ops::Range<usize>, String)> {
        let chars: Vec<(usize, char)> = self.edited.char_indices().collect();
        let byte = |k: usize| chars.get(k).map_or(self.edited.len(), |&(b, _)| b);
        let is_kana = |c: char| categories.of(c) & (HIRAGANA | KATAKANA) != 0;
        let mut edits = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let matched = (categories.of(chars[i].1) & KANJI != 0
                && matches!(chars.get(i + 1), Some((_, '(' | '（'))))
            .then(|| {
                let after = chars.get(i + 2..).unwrap_or_default();
                let kana = after.iter().take_while(|&&(_, c)| is_kana(c)).count();
                let close = i + 2 + kana;
                ((1..=4).contains(&kana) && matches!(chars.get(close), Some((_, ')' | '）'))))
                    .then_some(close)
            })
            .flatten();
            match matched {
                Some(close) => {
                    edits.push((byte(i + 1)..byte(close + 1), String::new()));
                    i = close + 1;
                }
                None => i += 1,
            }
        }
        edits
    }
}

//! Kanji to hiragana as pykakasi 2.3.0 does it (`Kakasi.convert`), the
//! front end Chatterbox's multilingual tokenizer runs on Japanese text
//! (`hiragana_normalize`), ported with its dictionaries read unchanged.
//!
//! pykakasi cuts the text into segments by script (kanji, hiragana,
//! katakana, ASCII, symbols) and reads each kanji segment from its
//! dictionary (`kanwadict4.db`): at a kanji, the longest entry the text
//! starts with wins, after variant glyphs are mapped to their standard
//! forms (`itaijidict4.db`). The port keeps its quirks, since parity is
//! measured on its output:
//! - its Greek range ends at U+30A1 instead of U+03A1, so most scripts and
//!   combining marks between (Cyrillic, Arabic, U+3099, …) count as symbols;
//! - characters above U+FFFF that are not kanji (emoji, CJK extension B)
//!   and U+F000–U+FFFD are dropped;
//! - a kanji missing from the dictionary gets no reading and the character
//!   after it is skipped;
//! - a character outside every script flushes the pending segment without
//!   clearing it, so that segment can come out twice.
//!
//! The dictionaries are GPL-3.0-or-later (KAKASI's, and part of UniDic
//! re-licensed by pykakasi), as Vivace is; they ship in pykakasi's wheel on
//! PyPI and are fetched from there, not embedded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

use crate::{Error, Result};

/// A value of the pickle subset the dictionaries use.
#[derive(Debug, Clone)]
enum Value {
    None,
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Mark,
}

/// Reads a protocol-4 pickle of dicts, lists, tuples, strings, small
/// integers and `None`, as pykakasi's `.db` files are written. Memo
/// references are refused (the files have none).
fn unpickle(bytes: &[u8]) -> std::result::Result<Value, String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let end = at.checked_add(n).filter(|&e| e <= bytes.len());
        let Some(end) = end else {
            return Err(format!("truncated at byte {at}"));
        };
        let s = &bytes[*at..end];
        *at = end;
        Ok(s)
    };
    let pop_mark = |stack: &mut Vec<Value>| -> std::result::Result<Vec<Value>, String> {
        let Some(m) = stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return Err("no mark on the stack".into());
        };
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items)
    };
    let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string());
    loop {
        let op = take(&mut at, 1)?[0];
        match op {
            0x80 => {
                take(&mut at, 1)?; // PROTO
            }
            0x95 => {
                take(&mut at, 8)?; // FRAME
            }
            0x94 => {} // MEMOIZE: nothing refers back
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b'(' => stack.push(Value::Mark),
            b'N' => stack.push(Value::None),
            b'K' => stack.push(Value::Int(i64::from(take(&mut at, 1)?[0]))),
            b'M' => {
                let b = take(&mut at, 2)?;
                stack.push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            b'J' => {
                let b = take(&mut at, 4)?;
                stack.push(Value::Int(i64::from(i32::from_le_bytes([
                    b[0], b[1], b[2], b[3],
                ]))));
            }
            0x8c => {
                let n = take(&mut at, 1)?[0] as usize;
                let s = utf8(take(&mut at, n)?)?;
                stack.push(Value::Str(s));
            }
            b'X' => {
                let b = take(&mut at, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let s = utf8(take(&mut at, n)?)?;
                stack.push(Value::Str(s));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("tuple of an empty stack".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = stack.pop().ok_or("append to an empty stack")?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.push(v),
                    _ => return Err("append to a non-list".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err("appends to a non-list".into()),
                }
            }
            b's' => {
                let v = stack.pop().ok_or("setitem on an empty stack")?;
                let k = stack.pop().ok_or("setitem on an empty stack")?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.push((k, v)),
                    _ => return Err("setitem on a non-dict".into()),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                if items.len() % 2 != 0 {
                    return Err("setitems with an odd count".into());
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.extend(pairs),
                    _ => return Err("setitems on a non-dict".into()),
                }
            }
            b'.' => return stack.pop().ok_or_else(|| "empty pickle".into()),
            other => {
                return Err(format!(
                    "pickle opcode 0x{other:02x} at byte {} is not one pykakasi's dictionaries use",
                    at - 1
                ))
            }
        }
    }
}

/// One reading of a dictionary entry, with the okurigana condition some
/// entries carry (the previous segment must be one of these).
#[derive(Debug, Clone)]
struct Reading {
    yomi: String,
    condition: Option<Vec<String>>,
}

/// The entries starting with one kanji.
#[derive(Debug, Clone, Default)]
struct Table {
    entries: HashMap<String, Vec<Reading>>,
    longest: usize,
}

/// pykakasi's dictionaries, loaded.
#[derive(Debug, Clone)]
pub struct Kakasi {
    kanwa: HashMap<char, Table>,
    /// Variant glyph to standard glyph (`None`: deleted, as variation
    /// selectors are).
    itaiji: HashMap<char, Option<char>>,
}

/// The two files, by the names pykakasi gives them.
pub const KANWA_FILE: &str = "kanwadict4.db";
/// The variant-glyph table.
pub const ITAIJI_FILE: &str = "itaijidict4.db";

/// Which script pykakasi takes a character to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Kanji,
    Kana,
    Hiragana,
    Symbol,
    Alpha,
}

/// The characters that end a segment (`Ch.endmark`).
const END_MARKS: &str = ")]!,.,\u{3001}\u{3002}\u{ff1f}\u{ff10}\u{ff1e}\u{ff1c}";
/// Prolonged sound marks, which join whatever segment is pending.
const LONG_SYMBOLS: &str = "\u{30fc}\u{2015}\u{2212}\u{ff70}";

fn is_hiragana_region(c: u32) -> bool {
    (0x3041..0x3097).contains(&c) || (0x1B150..=0x1B152).contains(&c)
}

fn is_katakana_region(c: u32) -> bool {
    (0x30A1..0x30FD).contains(&c)
        || (0xFF66..0xFF9F).contains(&c)
        || (0x1B164..=0x1B167).contains(&c)
}

fn is_alpha_region(c: u32) -> bool {
    (0x20..0x7F).contains(&c)
}

/// `Sym2.isRegion`, with its Greek range running to U+30A1.
fn is_symbol_region(c: u32) -> bool {
    (0x3000..=0x3020).contains(&c)
        || (0x3030..=0x303F).contains(&c)
        || (0x0391..=0x30A1).contains(&c)
        // (its Sigma–Omega range, U+30A3 to U+03A9, is empty)
        || (0x03B1..=0x03C9).contains(&c)
        || (0x0410..=0x044F).contains(&c)
        || (0xFF01..=0xFF1A).contains(&c)
        || (0x00A1..=0x00FF).contains(&c)
        || (0xFF20..=0xFF5E).contains(&c)
        || c == 0x0451
        || c == 0x0401
}

fn is_variation_selector(c: char) -> bool {
    let c = c as u32;
    (0xE0100..=0xE01EF).contains(&c) || (0xFE00..=0xFE02).contains(&c)
}

/// One segment of pykakasi's output: the text and its kana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The original characters.
    pub orig: String,
    /// The reading, katakana turned to hiragana (`hira`).
    pub hira: String,
}

impl Kakasi {
    /// Reads `kanwadict4.db` and `itaijidict4.db` (pykakasi's pickled
    /// dictionaries, as its wheel ships them).
    pub fn from_files(kanwa: &Path, itaiji: &Path) -> Result<Self> {
        let load = |path: &Path| -> Result<Value> {
            let bad = |reason: String| Error::TokenizerFile {
                path: path.to_path_buf(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            unpickle(&bytes).map_err(|e| bad(format!("not pykakasi's dictionary: {e}")))
        };
        let wrong = |path: &Path, what: &str| Error::TokenizerFile {
            path: PathBuf::from(path),
            reason: format!("not pykakasi's dictionary: {what}"),
        };
        let Value::Dict(tables) = load(kanwa)? else {
            return Err(wrong(kanwa, "not a dict at its top"));
        };
        let mut parsed = HashMap::with_capacity(tables.len());
        for (key, table) in tables {
            let (Value::Int(code), Value::Dict(entries)) = (key, table) else {
                return Err(wrong(kanwa, "a table that is not {code: {word: readings}}"));
            };
            let Some(first) = u32::try_from(code).ok().and_then(char::from_u32) else {
                return Err(wrong(kanwa, "a key that is not a character"));
            };
            let mut t = Table::default();
            for (word, readings) in entries {
                let (Value::Str(word), Value::List(readings)) = (word, readings) else {
                    return Err(wrong(kanwa, "an entry that is not word: [readings]"));
                };
                let mut list = Vec::with_capacity(readings.len());
                for r in readings {
                    let Value::Tuple(pair) = r else {
                        return Err(wrong(kanwa, "a reading that is not (yomi, condition)"));
                    };
                    let (yomi, condition) = match pair.as_slice() {
                        [Value::Str(y), Value::None] => (y.clone(), None),
                        [Value::Str(y), Value::List(c)] => (
                            y.clone(),
                            Some(
                                c.iter()
                                    .filter_map(|v| match v {
                                        Value::Str(s) => Some(s.clone()),
                                        _ => None,
                                    })
                                    .collect(),
                            ),
                        ),
                        _ => return Err(wrong(kanwa, "a reading that is not (yomi, condition)")),
                    };
                    list.push(Reading { yomi, condition });
                }
                t.longest = t.longest.max(word.chars().count());
                t.entries.insert(word, list);
            }
            parsed.insert(first, t);
        }
        let Value::Dict(pairs) = load(itaiji)? else {
            return Err(wrong(itaiji, "not a dict at its top"));
        };
        let mut variants = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Some(from) = (match k {
                Value::Int(c) => u32::try_from(c).ok().and_then(char::from_u32),
                _ => None,
            }) else {
                return Err(wrong(itaiji, "a key that is not a character"));
            };
            let to = match v {
                Value::None => None,
                Value::Str(s) => s.chars().next(),
                Value::Int(c) => u32::try_from(c).ok().and_then(char::from_u32),
                _ => return Err(wrong(itaiji, "a value that is not a character")),
            };
            variants.insert(from, to);
        }
        Ok(Self {
            kanwa: parsed,
            itaiji: variants,
        })
    }

    fn is_kanji_region(&self, c: char) -> bool {
        (0x3400..0xE000).contains(&(c as u32)) || self.itaiji.contains_key(&c)
    }

    /// `JConv.convert`: the reading of the longest entry `text` starts
    /// with, and how many characters of `text` it covers (0: none).
    fn read_kanji(&self, text: &[char], before: &str) -> (String, usize) {
        let mapped: Vec<char> = text
            .iter()
            .filter_map(|c| match self.itaiji.get(c) {
                Some(to) => *to,
                None => Some(*c),
            })
            .collect();
        let deleted = text.len() - mapped.len();
        let Some(table) = mapped.first().and_then(|c| self.kanwa.get(c)) else {
            return (String::new(), 0);
        };
        let mut reading = String::new();
        let mut length = 0usize;
        for l in (1..=table.longest.min(mapped.len())).rev() {
            let key: String = mapped[..l].iter().collect();
            let Some(readings) = table.entries.get(&key) else {
                continue;
            };
            let fits = readings.iter().find(|r| match &r.condition {
                None => true,
                Some(c) => c.iter().any(|s| s == before),
            });
            if let Some(r) = fits {
                reading = r.yomi.clone();
                length = l;
                break;
            }
        }
        // Variation selectors: stretch the match over them (pykakasi's
        // own rule, Python's negative indexing included).
        let at = |s: &[char], i: isize| -> Option<char> {
            let i = if i < 0 { s.len() as isize + i } else { i };
            usize::try_from(i).ok().and_then(|i| s.get(i).copied())
        };
        for _ in 0..deleted {
            if length > text.len() {
                break;
            } else if at(&mapped, length as isize - 1) != at(text, length as isize - 1)
                || (length < text.len()
                    && text.get(length).is_some_and(|&c| is_variation_selector(c)))
            {
                length += 1;
            }
        }
        (reading, length)
    }

    /// `Kakasi.convert`: the segments of `text` with their readings.
    pub fn convert(&self, text: &str) -> Vec<Segment> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut orig = String::new();
        let mut kana = String::new();
        let mut prev = Script::Kanji;
        let flush = |out: &mut Vec<Segment>, orig: &str, kana: &str| {
            out.push(Segment {
                orig: orig.to_string(),
                hira: katakana_to_hiragana(kana),
            })
        };
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let code = c as u32;
            // What to do with the pending segment and this character.
            enum Action {
                Put,
                Flush,
                Done,
            }
            let start_new = |next: Script, prev: &mut Script| -> Action {
                let same = *prev == next;
                *prev = next;
                match same {
                    true => Action::Put,
                    false => Action::Flush,
                }
            };
            let action = if END_MARKS.contains(c) {
                prev = Script::Symbol;
                Action::Flush
            } else if LONG_SYMBOLS.contains(c) {
                Action::Put
            } else if is_katakana_region(code) {
                start_new(Script::Kana, &mut prev)
            } else if is_hiragana_region(code) {
                start_new(Script::Hiragana, &mut prev)
            } else if is_alpha_region(code) {
                start_new(Script::Alpha, &mut prev)
            } else if is_symbol_region(code) {
                if prev != Script::Symbol {
                    prev = Script::Symbol;
                    Action::Flush
                } else {
                    // A symbol after a symbol: out on its own.
                    if !orig.is_empty() {
                        flush(&mut out, &orig, &kana);
                    }
                    flush(&mut out, &c.to_string(), &c.to_string());
                    orig.clear();
                    kana.clear();
                    i += 1;
                    Action::Done
                }
            } else if self.is_kanji_region(c) {
                if !orig.is_empty() {
                    flush(&mut out, &orig, &kana);
                }
                let (reading, length) = self.read_kanji(&chars[i..], &orig);
                prev = Script::Kanji;
                if length > 0 {
                    orig = chars[i..(i + length).min(chars.len())].iter().collect();
                    kana = reading;
                    i += length;
                } else {
                    // Unknown: out with no reading, and the next character
                    // is skipped.
                    flush(&mut out, &c.to_string(), "");
                    orig.clear();
                    kana.clear();
                    i += 2;
                }
                Action::Done
            } else if (0xF000..=0xFFFD).contains(&code) || (0x10000..=0x10FFFD).contains(&code) {
                prev = Script::Symbol;
                if !orig.is_empty() {
                    flush(&mut out, &orig, &kana);
                }
                i += 1;
                Action::Done
            } else {
                if !orig.is_empty() {
                    flush(&mut out, &orig, &kana);
                }
                flush(&mut out, &c.to_string(), "");
                i += 1;
                Action::Done
            };
            match action {
                Action::Put => {
                    orig.push(c);
                    kana.push(c);
                    i += 1;
                }
                Action::Flush => {
                    if !orig.is_empty() {
                        flush(&mut out, &orig, &kana);
                    }
                    orig = c.to_string();
                    kana = c.to_string();
                    i += 1;
                }
                Action::Done => {}
            }
        }
        if !orig.is_empty() {
            flush(&mut out, &orig, &kana);
        }
        out
    }

    /// Chatterbox's `hiragana_normalize`: segments with a kanji
    /// (U+4E00–U+9FFF) become their reading (with a space before one that
    /// starts with は or へ), the rest stay as written; then NFKD.
    pub fn hiragana_normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() * 2);
        for segment in self.convert(text) {
            if segment
                .orig
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
            {
                if segment.hira.starts_with(['は', 'へ']) {
                    out.push(' ');
                }
                out.push_str(&segment.hira);
            } else {
                out.push_str(&segment.orig);
            }
        }
        out.nfkd().collect()
    }
}

/// `IConv._k2h`: katakana to hiragana, as pykakasi's `K2("H")` does it
/// (ヷ–ヺ and the prolonged mark kept; its half-width table maps ｰ to ー,
/// which the katakana offset then turns into ゜).
fn katakana_to_hiragana(text: &str) -> String {
    text.chars()
        .map(|c| {
            let code = c as u32;
            match code {
                0x1B164..=0x1B166 => char::from_u32(code - 0x14).unwrap_or(c),
                0x1B167 => 'ん',
                0x30A1..=0x30F6 => char::from_u32(code - 0x60).unwrap_or(c),
                0xFF70 => '\u{309c}',
                _ => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickles_of_the_dictionary_shapes_are_read() {
        // {20844: {'公': [('こう', None)], '公司': [('こうし', ['x'])]}} at protocol 4.
        let mut p = vec![0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0, b'}', 0x94, b'M'];
        p.extend_from_slice(&20844u16.to_le_bytes());
        p.extend_from_slice(&[b'}', 0x94, b'(']);
        let s = |p: &mut Vec<u8>, t: &str| {
            p.push(0x8c);
            p.push(t.len() as u8);
            p.extend_from_slice(t.as_bytes());
            p.push(0x94);
        };
        s(&mut p, "公");
        p.extend_from_slice(&[b']', 0x94]);
        s(&mut p, "こう");
        p.extend_from_slice(&[b'N', 0x86, 0x94, b'a']);
        s(&mut p, "公司");
        p.extend_from_slice(&[b']', 0x94]);
        s(&mut p, "こうし");
        p.push(b']');
        s(&mut p, "x");
        p.extend_from_slice(&[b'a', 0x86, 0x94, b'a', b'u', b's', b'.']);
        let Ok(Value::Dict(top)) = unpickle(&p) else {
            panic!("not a dict");
        };
        assert_eq!(top.len(), 1);
        let (Value::Int(20844), Value::Dict(entries)) = &top[0] else {
            panic!("{top:?}");
        };
        assert_eq!(entries.len(), 2);
        assert!(
            unpickle(&[0x80, 4, b'h', 0]).is_err(),
            "memo references refused"
        );
        assert!(unpickle(&[0x80]).is_err(), "truncated");
    }

    #[test]
    fn katakana_becomes_hiragana_as_pykakasi_does() {
        assert_eq!(katakana_to_hiragana("カタカナー"), "かたかなー");
        assert_eq!(katakana_to_hiragana("ヴヷ"), "ゔヷ");
        assert_eq!(katakana_to_hiragana("じｰ"), "じ゜");
    }
}

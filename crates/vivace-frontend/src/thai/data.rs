//! TLTK 1.10's data files, read as published in its wheel (BSD-3-Clause,
//! Chulalongkorn University): the syllable patterns (`sylrule.lts`), the
//! syllables they miss (`thaisyl.dict`), the syllable trigram counts of the
//! segmenter (`sylseg.3g`, a pickled `defaultdict(int)` keyed by 3-tuples
//! of syllables) and the pronunciation statistics (`PhSTrigram.sts`).
//! The text files are in Windows-874.

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;

use crate::error::{Error, Result};

/// The files `th2ipa` reads, in the folder the voice store installs.
pub const FILES: [&str; 4] = ["sylrule.lts", "thaisyl.dict", "sylseg.3g", "PhSTrigram.sts"];

/// Interned syllable.
pub type Sym = u32;

/// How one entry of TLTK's `PRON` table matches at a position.
pub enum Matcher {
    /// A pattern of `sylrule.lts` with its letter classes expanded.
    Pattern(Regex),
    /// A syllable of `thaisyl.dict` (no regex syntax in it).
    Literal(String),
}

/// One key of `PRON`, in the table's insertion order, with its
/// pronunciations (TLTK's notation: `X` initial, `Y` final, … tone `8`).
pub struct PronEntry {
    /// The key as a pattern.
    pub matcher: Matcher,
    /// The pattern's capture groups (the letters its codes stand for).
    pub groups: usize,
    /// Pronunciations in file order.
    pub prons: Vec<String>,
}

/// Everything `th2ipa` looks up, loaded once.
pub struct TltkData {
    /// `PRON`: patterns first, then dictionary syllables.
    pub pron: Vec<PronEntry>,
    /// Dictionary entries by first character (indices into `pron`).
    pub literal_by_first: HashMap<char, Vec<usize>>,
    /// Pattern entries (indices into `pron`).
    pub patterns: Vec<usize>,
    /// Syllable interner of the trigram counts.
    pub syms: HashMap<String, Sym>,
    /// `TriCount`.
    pub tri: HashMap<[Sym; 3], u64>,
    /// `BiCount` as loaded.
    pub bi: HashMap<[Sym; 2], u64>,
    /// `BiType`.
    pub bi_type: HashMap<[Sym; 2], u64>,
    /// `Count` as loaded, by symbol.
    pub count: Vec<u64>,
    /// `Type`, by symbol.
    pub types: Vec<u64>,
    /// `TotalWord` as loaded.
    pub total_word: u64,
    /// `TotalLex`.
    pub total_lex: u64,
    /// `PhSTrigram` and the other pronunciation statistics, keyed by their
    /// parts joined with NUL.
    pub phone: HashMap<String, f64>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::ThaiData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| bad(path, format!("cannot read it ({e})")))
}

/// Decodes Windows-874 (Python's `cp874`), refusing its undefined bytes.
pub fn decode_cp874(bytes: &[u8], path: &Path) -> Result<String> {
    let mut out = String::with_capacity(bytes.len() * 2);
    for (at, &b) in bytes.iter().enumerate() {
        let c = match b {
            0x00..=0x7f => char::from(b),
            0x80 => '\u{20ac}',
            0x85 => '\u{2026}',
            0x91 => '\u{2018}',
            0x92 => '\u{2019}',
            0x93 => '\u{201c}',
            0x94 => '\u{201d}',
            0x95 => '\u{2022}',
            0x96 => '\u{2013}',
            0x97 => '\u{2014}',
            0xa0 => '\u{a0}',
            0xa1..=0xda | 0xdf..=0xfb => {
                char::from_u32(u32::from(b) + 0x0d60).unwrap_or('\u{fffd}')
            }
            _ => {
                return Err(bad(
                    path,
                    format!("byte 0x{b:02x} at {at} is not Windows-874"),
                ))
            }
        };
        out.push(c);
    }
    Ok(out)
}

impl TltkData {
    /// Reads TLTK's four files from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut data = Self {
            pron: Vec::new(),
            literal_by_first: HashMap::new(),
            patterns: Vec::new(),
            syms: HashMap::new(),
            tri: HashMap::new(),
            bi: HashMap::new(),
            bi_type: HashMap::new(),
            count: Vec::new(),
            types: Vec::new(),
            total_word: 0,
            total_lex: 0,
            phone: HashMap::new(),
        };
        let mut keys: HashMap<String, usize> = HashMap::new();
        data.read_patterns(&dir.join(FILES[0]), &mut keys)?;
        data.read_dictionary(&dir.join(FILES[1]), &mut keys)?;
        data.read_trigrams(&dir.join(FILES[2]))?;
        data.read_phone_stats(&dir.join(FILES[3]))?;
        Ok(data)
    }

    fn add(
        &mut self,
        keys: &mut HashMap<String, usize>,
        key: String,
        pron: String,
        path: &Path,
    ) -> Result<()> {
        if let Some(&at) = keys.get(&key) {
            self.pron[at].prons.push(pron);
            return Ok(());
        }
        let literal = !key.chars().any(|c| ".^$*+?{}[]\\|()".contains(c));
        let (matcher, groups) = if literal {
            (Matcher::Literal(key.clone()), 0)
        } else {
            let re = Regex::new(&format!("^(?:{key})"))
                .map_err(|e| bad(path, format!("pattern `{key}`: {e}")))?;
            let groups = re.captures_len() - 1;
            (Matcher::Pattern(re), groups)
        };
        let at = self.pron.len();
        match &matcher {
            Matcher::Literal(text) => {
                if let Some(first) = text.chars().next() {
                    self.literal_by_first.entry(first).or_default().push(at);
                }
            }
            Matcher::Pattern(_) => self.patterns.push(at),
        }
        self.pron.push(PronEntry {
            matcher,
            groups,
            prons: vec![pron],
        });
        keys.insert(key, at);
        Ok(())
    }

    /// `read_sylpattern`: `form,pronunciation,flag` with TLTK's letter
    /// classes.
    fn read_patterns(&mut self, path: &Path, keys: &mut HashMap<String, usize>) -> Result<()> {
        let text = decode_cp874(&read(path)?, path)?;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim_end();
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() < 3 {
                return Err(bad(path, format!("line {} has no three fields", n + 1)));
            }
            let mut form = fields[0].to_string();
            for (code, class) in [
                ("X", "([ก-ฮ])"),
                ("C", "([กขคจดตทบปผพฟสศซ])"),
                ("Y", "([ก-ฬฮ])"),
                ("R", "([รลว])"),
                ("K", "([ก-ฮ])"),
                ("A", "([กจฆดตบปอขฉฐถผฝศษสหคชพภทธมยรลวนณซญฑฏฌ])"),
                ("Z", "([กงดนมบรลฎฏจตณถพศทสชคภปญ])"),
                ("D", "([กงดนมบวยต])"),
                ("W", "[ก-ฮ]"),
                (".", "[\\.]"),
            ] {
                form = form.replace(code, class);
            }
            form = form.replace(
                'T',
                if fields[2] == "T" {
                    "[่้๊๋]"
                } else {
                    "[่้๊๋]*"
                },
            );
            self.add(keys, form, fields[1].to_string(), path)?;
        }
        Ok(())
    }

    /// `read_syldict`: `syllable<TAB>pronunciation`.
    fn read_dictionary(&mut self, path: &Path, keys: &mut HashMap<String, usize>) -> Result<()> {
        let text = decode_cp874(&read(path)?, path)?;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let mut fields = line.trim_end().split('\t');
            let (Some(form), Some(pron)) = (fields.next(), fields.next()) else {
                return Err(bad(path, format!("line {} has no tab", n + 1)));
            };
            self.add(keys, form.to_string(), pron.to_string(), path)?;
        }
        Ok(())
    }

    fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.syms.get(s) {
            return id;
        }
        let id = self.syms.len() as Sym;
        self.syms.insert(s.to_string(), id);
        id
    }

    /// `read_stat`: the trigram counts and the bigram, unigram and type
    /// counts TLTK derives from them.
    fn read_trigrams(&mut self, path: &Path) -> Result<()> {
        let bytes = read(path)?;
        let tri = unpickle_trigrams(&bytes, self).map_err(|reason| bad(path, reason))?;
        let mut count: HashMap<Sym, u64> = HashMap::new();
        for (&[x, y, _], &n) in &tri {
            *self.bi_type.entry([x, y]).or_default() += 1;
            *self.bi.entry([x, y]).or_default() += n;
            *count.entry(y).or_default() += n;
        }
        let size = self.syms.len();
        self.count = vec![0; size];
        self.types = vec![0; size];
        for &[x, _] in self.bi.keys() {
            self.types[x as usize] += 1;
        }
        for (&y, &n) in &count {
            self.count[y as usize] = n;
            self.total_lex += 1;
            self.total_word += n;
        }
        self.tri = tri;
        Ok(())
    }

    /// `read_PhSTrigram`: `prev-syllable-next/pronunciation<TAB>count`.
    fn read_phone_stats(&mut self, path: &Path) -> Result<()> {
        let text = decode_cp874(&read(path)?, path)?;
        let mut add = |parts: &[&str], n: f64| {
            *self.phone.entry(parts.join("\0")).or_default() += n;
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end().replace("<w>", "|");
            let malformed = || bad(path, format!("line {} is not `a-b-c/p<TAB>count`", n + 1));
            let (x, ct) = line.split_once('\t').ok_or_else(malformed)?;
            let ct: f64 = ct.parse().map_err(|_| malformed())?;
            let (fs, p) = x.split_once('/').ok_or_else(malformed)?;
            let parts: Vec<&str> = fs.split('-').collect();
            let [x1, x2, x3] = parts[..] else {
                return Err(malformed());
            };
            add(&["T", x1, x2, x3, p], ct);
            add(&["FT", x1, x2, x3], ct);
            add(&["B", x1, x2, p], ct);
            add(&["FB", x1, x2], ct);
            add(&["B", x2, x3, p], ct);
            add(&["FB", x2, x3], ct);
            add(&["U", x2, p], ct);
            add(&["FU", x2], ct);
            let abs_x = abstract_form(x2);
            let abs_p = abstract_pron(p);
            add(&["A", &abs_x, &abs_p], ct);
            add(&["FA", &abs_x], ct);
        }
        Ok(())
    }

    /// A pronunciation statistic (`0.0` when absent, as TLTK's
    /// `defaultdict(float)`).
    pub fn phone_stat(&self, parts: &[&str]) -> f64 {
        self.phone.get(&parts.join("\0")).copied().unwrap_or(0.0)
    }
}

/// A syllable with its tone marks dropped and consonants as `C`.
pub fn abstract_form(syllable: &str) -> String {
    syllable
        .chars()
        .filter(|c| !('\u{e48}'..='\u{e4b}').contains(c))
        .map(|c| if ('ก'..='ฮ').contains(&c) { 'C' } else { c })
        .collect()
}

/// A pronunciation with its digits dropped and all but vowels as `C`.
pub fn abstract_pron(pron: &str) -> String {
    pron.chars()
        .filter(|c| !c.is_ascii_digit())
        .map(|c| if "aeio@OuxU".contains(c) { c } else { 'C' })
        .collect()
}

/// The pickled trigram counts of `sylseg.3g` (protocol 3): a
/// `collections.defaultdict(int)` filled by `SETITEMS` with
/// `(str, str, str) → int`. Only the opcodes such a pickle uses are read.
fn unpickle_trigrams(
    bytes: &[u8],
    data: &mut TltkData,
) -> std::result::Result<HashMap<[Sym; 3], u64>, String> {
    #[derive(Clone)]
    enum Value {
        Mark,
        Sym(Sym),
        Int(u64),
        Tri([Sym; 3]),
        Other,
    }
    let mut stack: Vec<Value> = Vec::new();
    // Memo ids are consecutive from 0 in a pickle written at once.
    let mut memo: Vec<Value> = Vec::new();
    // Each memo entry takes at least one opcode, which bounds the ids.
    let put = |memo: &mut Vec<Value>, id: u32, v: Value| -> std::result::Result<(), String> {
        let id = id as usize;
        if id > bytes.len() {
            return Err(format!("memo id {id} is beyond the pickle's size"));
        }
        if memo.len() <= id {
            memo.resize(id + 1, Value::Other);
        }
        memo[id] = v;
        Ok(())
    };
    let mut out: HashMap<[Sym; 3], u64> = HashMap::new();
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let slice = bytes.get(*at..*at + n).ok_or("truncated pickle")?;
        *at += n;
        Ok(slice)
    };
    let u32_le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    loop {
        let op = *take(&mut at, 1)?.first().ok_or("truncated pickle")?;
        match op {
            0x80 => {
                take(&mut at, 1)?; // PROTO
            }
            b'c' => {
                // GLOBAL module\nname\n
                for _ in 0..2 {
                    let rest = bytes.get(at..).ok_or("truncated pickle")?;
                    let end = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or("truncated GLOBAL")?;
                    at += end + 1;
                }
                stack.push(Value::Other);
            }
            b'q' => {
                let id = take(&mut at, 1)?[0];
                let top = stack.last().cloned().ok_or("BINPUT on empty stack")?;
                put(&mut memo, u32::from(id), top)?;
            }
            b'r' => {
                let id = u32_le(take(&mut at, 4)?);
                let top = stack.last().cloned().ok_or("LONG_BINPUT on empty stack")?;
                put(&mut memo, id, top)?;
            }
            b'h' => {
                let id = usize::from(take(&mut at, 1)?[0]);
                stack.push(memo.get(id).cloned().ok_or("BINGET of unknown memo")?);
            }
            b'j' => {
                let id = u32_le(take(&mut at, 4)?) as usize;
                stack.push(memo.get(id).cloned().ok_or("LONG_BINGET of unknown memo")?);
            }
            b'(' => stack.push(Value::Mark),
            0x85 => {
                // TUPLE1
                stack.pop().ok_or("TUPLE1 on empty stack")?;
                stack.push(Value::Other);
            }
            0x87 => {
                // TUPLE3
                let c = stack.pop();
                let b = stack.pop();
                let a = stack.pop();
                match (a, b, c) {
                    (Some(Value::Sym(a)), Some(Value::Sym(b)), Some(Value::Sym(c))) => {
                        stack.push(Value::Tri([a, b, c]))
                    }
                    _ => stack.push(Value::Other),
                }
            }
            b'R' => {
                // REDUCE: defaultdict(int)
                stack.pop().ok_or("REDUCE on empty stack")?;
                stack.pop().ok_or("REDUCE on empty stack")?;
                stack.push(Value::Other);
            }
            b'X' => {
                let len = u32_le(take(&mut at, 4)?) as usize;
                let text = std::str::from_utf8(take(&mut at, len)?)
                    .map_err(|_| "a string that is not UTF-8")?;
                let sym = data.intern(text);
                stack.push(Value::Sym(sym));
            }
            b'K' => stack.push(Value::Int(u64::from(take(&mut at, 1)?[0]))),
            b'M' => {
                let b = take(&mut at, 2)?;
                stack.push(Value::Int(u64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            b'J' => {
                let n = i32::from_le_bytes(
                    take(&mut at, 4)?
                        .try_into()
                        .map_err(|_| "truncated pickle")?,
                );
                stack.push(Value::Int(
                    u64::try_from(n).map_err(|_| "a negative count")?,
                ));
            }
            b'u' => {
                // SETITEMS: pairs since the mark.
                let mark = stack
                    .iter()
                    .rposition(|v| matches!(v, Value::Mark))
                    .ok_or("SETITEMS without a mark")?;
                let items = stack.split_off(mark + 1);
                stack.pop();
                for pair in items.chunks(2) {
                    match pair {
                        [Value::Tri(k), Value::Int(v)] => {
                            *out.entry(*k).or_default() = *v;
                        }
                        _ => return Err("an item that is not (str, str, str) -> int".into()),
                    }
                }
            }
            b'.' => break,
            other => {
                return Err(format!(
                    "pickle opcode 0x{other:02x} at {} is not one a trigram table uses",
                    at - 1
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("no trigram counts in it".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_874_decodes_thai_and_refuses_its_gaps() {
        let path = Path::new("x");
        assert_eq!(
            decode_cp874(&[0xa1, 0xd2, b',', 0xe8], path)
                .ok()
                .as_deref(),
            Some("กา,่")
        );
        assert!(decode_cp874(&[0xdb], path).is_err());
    }

    #[test]
    fn broken_tables_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let missing = TltkData::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            missing.contains("sylrule.lts") && missing.contains("vivace download tltk"),
            "{missing}"
        );
        // Windows-874: `Xา,Xaa,N` and `ก<TAB>kOO0`.
        std::fs::write(dir.path().join("sylrule.lts"), b"X\xd2,Xaa,N\n").expect("write");
        std::fs::write(dir.path().join("thaisyl.dict"), b"\xa1\tkOO0\n").expect("write");
        // A pickle cut short, then one with an absurd memo id.
        std::fs::write(dir.path().join("sylseg.3g"), [0x80, 3, b'(', b'X', 9, 0, 0])
            .expect("write");
        let cut = TltkData::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            cut.contains("sylseg.3g") && cut.contains("truncated"),
            "{cut}"
        );
        std::fs::write(
            dir.path().join("sylseg.3g"),
            [0x80, 3, b'(', b'r', 255, 255, 255, 255],
        )
        .expect("write");
        let memo = TltkData::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(memo.contains("memo id"), "{memo}");
    }
}

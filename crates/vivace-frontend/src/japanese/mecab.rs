//! MeCab 0.996's morphological analysis, as OpenJTalk (and so
//! pyopenjtalk-plus, Piper's Japanese front end) runs it, over the compiled
//! dictionary files as published (`sys.dic`, `unk.dic`, `matrix.bin`,
//! `char.bin`: NAIST-JDIC for OpenJTalk, BSD-3-Clause).
//!
//! The lattice is MeCab's: at every byte offset that some word ends at,
//! every dictionary word starting there (a double-array prefix search), and
//! unknown words by character category (`char.bin`: invoke, group, length);
//! each node keeps its cheapest left neighbour (connection cost from
//! `matrix.bin` plus the word cost, the first found winning ties in MeCab's
//! newest-first list order), and the best path is read back from EOS.

use std::path::Path;

use crate::error::{Error, Result};

/// MeCab's dictionary magic (xor the file size).
const MAGIC: u32 = 0xef71_8f77;
/// The dictionary format version MeCab 0.996 writes.
const VERSION: u32 = 102;
/// MeCab's `DEFAULT_MAX_GROUPING_SIZE`.
const MAX_GROUPING: usize = 24;
/// A word is looked up over at most this many bytes.
const MAX_LOOKUP: usize = 65535;

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::JapaneseData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One word entry of a dictionary (MeCab's `Token`).
#[derive(Debug, Clone, Copy)]
pub struct Token {
    /// Left context id.
    pub left: u16,
    /// Right context id.
    pub right: u16,
    /// Part-of-speech id.
    pub pos: u16,
    /// Word cost.
    pub cost: i16,
    /// Offset of its feature string.
    feature: u32,
}

/// A compiled MeCab dictionary: double array, tokens, features.
pub struct Dictionary {
    bytes: Vec<u8>,
    array: std::ops::Range<usize>,
    tokens: std::ops::Range<usize>,
    features: std::ops::Range<usize>,
    /// Left context ids (the matrix's size).
    pub lsize: u32,
    /// Right context ids.
    pub rsize: u32,
}

impl Dictionary {
    /// Reads `sys.dic` or `unk.dic`, checking its magic, version and sizes.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read it ({e})")))?;
        let header = |i: usize| {
            u32_at(&bytes, 4 * i).ok_or_else(|| bad(path, "shorter than a dictionary header"))
        };
        if (header(0)? ^ MAGIC) as usize != bytes.len() {
            return Err(bad(
                path,
                "not a MeCab dictionary (its magic does not match its size)",
            ));
        }
        if header(1)? != VERSION {
            return Err(bad(
                path,
                format!(
                    "dictionary version {} (MeCab 0.996 reads {VERSION})",
                    header(1)?
                ),
            ));
        }
        let (lsize, rsize) = (header(4)?, header(5)?);
        let (dsize, tsize, fsize) = (
            header(6)? as usize,
            header(7)? as usize,
            header(8)? as usize,
        );
        let charset = bytes.get(40..72).unwrap_or_default();
        let charset =
            String::from_utf8_lossy(charset.split(|&b| b == 0).next().unwrap_or_default())
                .to_lowercase();
        if !matches!(charset.as_str(), "utf-8" | "utf8") {
            return Err(bad(
                path,
                format!("charset {charset} (only UTF-8 dictionaries are read)"),
            ));
        }
        let array = 72..72 + dsize;
        let tokens = array.end..array.end + tsize;
        let features = tokens.end..tokens.end + fsize;
        if features.end != bytes.len() || dsize % 8 != 0 || tsize % 16 != 0 {
            return Err(bad(path, "its section sizes do not add up to the file"));
        }
        Ok(Self {
            bytes,
            array,
            tokens,
            features,
            lsize,
            rsize,
        })
    }

    /// The double array's unit `i`: (base, check).
    fn unit(&self, i: usize) -> Option<(i32, u32)> {
        let at = self.array.start + 8 * i;
        if at + 8 > self.array.end {
            return None;
        }
        Some((
            u32_at(&self.bytes, at)? as i32,
            u32_at(&self.bytes, at + 4)?,
        ))
    }

    fn leaf(&self, b: i32) -> Option<u32> {
        let (n, check) = self.unit(usize::try_from(b).ok()?)?;
        (check == b as u32 && n < 0).then(|| (-n - 1) as u32)
    }

    /// Darts' `commonPrefixSearch`: (value, byte length) of every key that
    /// is a prefix of `key`, shortest first.
    pub fn prefixes(&self, key: &[u8]) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        let Some((mut b, _)) = self.unit(0) else {
            return out;
        };
        for (i, &byte) in key.iter().enumerate() {
            if let Some(v) = self.leaf(b) {
                out.push((v, i));
            }
            let Some(p) = usize::try_from(b).ok().map(|b| b + usize::from(byte) + 1) else {
                return out;
            };
            match self.unit(p) {
                Some((base, check)) if check == b as u32 => b = base,
                _ => return out,
            }
        }
        if let Some(v) = self.leaf(b) {
            out.push((v, key.len()));
        }
        out
    }

    /// Darts' `exactMatchSearch`.
    pub fn exact(&self, key: &[u8]) -> Option<u32> {
        let (mut b, _) = self.unit(0)?;
        for &byte in key {
            let p = usize::try_from(b).ok()? + usize::from(byte) + 1;
            match self.unit(p) {
                Some((base, check)) if check == b as u32 => b = base,
                _ => return None,
            }
        }
        self.leaf(b)
    }

    /// The tokens a search value stands for (`value >> 8`, `value & 0xff`).
    pub fn tokens(&self, value: u32) -> Vec<Token> {
        let first = (value >> 8) as usize;
        let count = (value & 0xff) as usize;
        (first..first + count)
            .filter_map(|i| self.token(i))
            .collect()
    }

    fn token(&self, i: usize) -> Option<Token> {
        let at = self.tokens.start + 16 * i;
        if at + 16 > self.tokens.end {
            return None;
        }
        let b = &self.bytes;
        Some(Token {
            left: u16_at(b, at)?,
            right: u16_at(b, at + 2)?,
            pos: u16_at(b, at + 4)?,
            cost: u16_at(b, at + 6)? as i16,
            feature: u32_at(b, at + 8)?,
        })
    }

    /// A token's feature string (CSV).
    pub fn feature(&self, token: &Token) -> &str {
        let start = self.features.start + token.feature as usize;
        let rest = self.bytes.get(start..self.features.end).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }
}

/// A character's categories (MeCab's `CharInfo` bit field).
#[derive(Debug, Clone, Copy, Default)]
struct CharInfo(u32);

impl CharInfo {
    fn types(self) -> u32 {
        self.0 & 0x3ffff
    }
    fn default_type(self) -> usize {
        ((self.0 >> 18) & 0xff) as usize
    }
    fn length(self) -> usize {
        ((self.0 >> 26) & 0xf) as usize
    }
    fn group(self) -> bool {
        (self.0 >> 30) & 1 == 1
    }
    fn invoke(self) -> bool {
        self.0 >> 31 == 1
    }
    fn is_kind_of(self, other: CharInfo) -> bool {
        self.types() & other.types() != 0
    }
}

/// Where a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The system dictionary.
    Known,
    /// An unknown word by character category.
    Unknown,
}

/// One word of the best path.
#[derive(Debug, Clone)]
pub struct Morph {
    /// Byte range of the surface in the input.
    pub span: std::ops::Range<usize>,
    /// Its token.
    pub token: Token,
    /// Whether the dictionary knew it.
    pub origin: Origin,
    /// Cost of the path up to and including it.
    pub path_cost: i64,
}

#[derive(Clone)]
struct Node {
    start: usize,
    length: usize,
    rlength: usize,
    token: Token,
    origin: Origin,
    cost: i64,
    prev: usize,
}

/// MeCab over OpenJTalk's dictionary.
pub struct Mecab {
    sys: Dictionary,
    unk: Dictionary,
    matrix: Vec<i16>,
    lsize: usize,
    chars: Vec<u32>,
    unk_tokens: Vec<Vec<Token>>,
    space: CharInfo,
}

impl Mecab {
    /// Opens the dictionary folder (`sys.dic`, `unk.dic`, `matrix.bin`,
    /// `char.bin`).
    pub fn open(dir: &Path) -> Result<Self> {
        let sys = Dictionary::open(&dir.join("sys.dic"))?;
        let unk = Dictionary::open(&dir.join("unk.dic"))?;
        let path = dir.join("matrix.bin");
        let bytes =
            std::fs::read(&path).map_err(|e| bad(&path, format!("cannot read it ({e})")))?;
        let (l, r) = (
            u16_at(&bytes, 0).unwrap_or(0) as usize,
            u16_at(&bytes, 2).unwrap_or(0) as usize,
        );
        if bytes.len() != 4 + 2 * l * r || l != sys.lsize as usize || r != sys.rsize as usize {
            return Err(bad(
                &path,
                "its size does not match the dictionary's context ids",
            ));
        }
        let matrix = bytes[4..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();

        let path = dir.join("char.bin");
        let bytes =
            std::fs::read(&path).map_err(|e| bad(&path, format!("cannot read it ({e})")))?;
        let count = u32_at(&bytes, 0).unwrap_or(0) as usize;
        if bytes.len() != 4 + 32 * count + 4 * 0xffff {
            return Err(bad(&path, "not a MeCab character table"));
        }
        let names: Vec<&[u8]> = (0..count)
            .map(|i| {
                let name = &bytes[4 + 32 * i..4 + 32 * (i + 1)];
                name.split(|&b| b == 0).next().unwrap_or_default()
            })
            .collect();
        let chars: Vec<u32> = bytes[4 + 32 * count..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut unk_tokens = Vec::with_capacity(count);
        for name in names {
            let value = unk.exact(name).ok_or_else(|| {
                bad(
                    &dir.join("unk.dic"),
                    format!(
                        "no unknown-word entry for category {}",
                        String::from_utf8_lossy(name)
                    ),
                )
            })?;
            unk_tokens.push(unk.tokens(value));
        }
        let space = CharInfo(chars.get(0x20).copied().unwrap_or(0));
        Ok(Self {
            lsize: sys.lsize as usize,
            sys,
            unk,
            matrix,
            chars,
            unk_tokens,
            space,
        })
    }

    /// The feature string of a morph (`surface` not included).
    pub fn feature(&self, morph: &Morph) -> &str {
        match morph.origin {
            Origin::Known => self.sys.feature(&morph.token),
            Origin::Unknown => self.unk.feature(&morph.token),
        }
    }

    /// `utf8_to_ucs2` and the category table: (info, byte length).
    fn char_info(&self, text: &[u8], at: usize, end: usize) -> (CharInfo, usize) {
        let len = end - at;
        let b0 = text[at];
        let (code, mblen) = if b0 < 0x80 {
            (u32::from(b0), 1)
        } else if len >= 2 && b0 & 0xe0 == 0xc0 {
            (
                (u32::from(b0 & 0x1f) << 6) | u32::from(text[at + 1] & 0x3f),
                2,
            )
        } else if len >= 3 && b0 & 0xf0 == 0xe0 {
            (
                (u32::from(b0 & 0x0f) << 12)
                    | (u32::from(text[at + 1] & 0x3f) << 6)
                    | u32::from(text[at + 2] & 0x3f),
                3,
            )
        } else if len >= 4 && b0 & 0xf8 == 0xf0 {
            (0, 4)
        } else {
            (0, 1)
        };
        (
            CharInfo(self.chars.get(code as usize).copied().unwrap_or(0)),
            mblen,
        )
    }

    /// `seekToOtherType`: past the characters that share a category with
    /// the previous one; (position, the first other character's info and
    /// length, characters passed).
    fn seek(
        &self,
        text: &[u8],
        mut at: usize,
        end: usize,
        mut c: CharInfo,
    ) -> (usize, CharInfo, usize, usize) {
        let mut fail = CharInfo::default();
        let mut mblen = 0;
        let mut clen = 0;
        while at != end {
            let (info, len) = self.char_info(text, at, end);
            fail = info;
            mblen = len;
            if !c.is_kind_of(info) {
                break;
            }
            at += len;
            clen += 1;
            c = info;
        }
        (at, fail, mblen, clen)
    }

    /// The nodes starting at `pos`, in MeCab's creation order.
    fn lookup(&self, text: &[u8], pos: usize) -> Vec<Node> {
        let end = text.len().min(pos + MAX_LOOKUP);
        let (begin2, cinfo, mblen, _) = self.seek(text, pos, end, self.space);
        let mut nodes = Vec::new();
        if begin2 >= end {
            return nodes;
        }
        for (value, length) in self.sys.prefixes(&text[begin2..end]) {
            for token in self.sys.tokens(value) {
                nodes.push(Node {
                    start: begin2,
                    length,
                    rlength: begin2 - pos + length,
                    token,
                    origin: Origin::Known,
                    cost: 0,
                    prev: 0,
                });
            }
        }
        if !nodes.is_empty() && !cinfo.invoke() {
            return nodes;
        }
        let empty = Vec::new();
        let unknown = self.unk_tokens.get(cinfo.default_type()).unwrap_or(&empty);
        let add = |nodes: &mut Vec<Node>, begin3: usize| {
            for &token in unknown {
                nodes.push(Node {
                    start: begin2,
                    length: begin3 - begin2,
                    rlength: begin3 - pos,
                    token,
                    origin: Origin::Unknown,
                    cost: 0,
                    prev: 0,
                });
            }
        };
        let mut begin3 = begin2 + mblen;
        let mut group_end = None;
        if begin3 > end {
            add(&mut nodes, end);
            if !nodes.is_empty() {
                return nodes;
            }
        }
        if cinfo.group() {
            let (grouped, _, _, clen) = self.seek(text, begin3, end, cinfo);
            if clen <= MAX_GROUPING {
                add(&mut nodes, grouped);
            }
            group_end = Some(grouped);
        }
        for _ in 1..=cinfo.length() {
            if begin3 > end {
                break;
            }
            if Some(begin3) == group_end {
                continue;
            }
            add(&mut nodes, begin3);
            if begin3 >= end {
                break;
            }
            let (info, len) = self.char_info(text, begin3, end);
            if !cinfo.is_kind_of(info) {
                break;
            }
            begin3 += len;
        }
        if nodes.is_empty() {
            add(&mut nodes, begin3.min(end));
        }
        nodes
    }

    /// The best path through the lattice of `text`.
    pub fn parse(&self, text: &str) -> Vec<Morph> {
        let bytes = text.as_bytes();
        let len = bytes.len();
        let bos = Node {
            start: 0,
            length: 0,
            rlength: 0,
            token: Token {
                left: 0,
                right: 0,
                pos: 0,
                cost: 0,
                feature: 0,
            },
            origin: Origin::Known,
            cost: 0,
            prev: usize::MAX,
        };
        let mut nodes = vec![bos.clone()];
        // Nodes ending at each byte offset, oldest first (MeCab walks them
        // newest first).
        let mut ends: Vec<Vec<usize>> = vec![Vec::new(); len + 1];
        ends[0].push(0);
        let connect = |nodes: &mut Vec<Node>,
                       ends: &mut Vec<Vec<usize>>,
                       pos: usize,
                       mut right: Node|
         -> bool {
            let mut best: Option<usize> = None;
            let mut best_cost = i64::from(i32::MAX);
            for &l in ends[pos].iter().rev() {
                let left = &nodes[l];
                let link = self.matrix
                    [usize::from(left.token.right) + self.lsize * usize::from(right.token.left)];
                let cost = left.cost + i64::from(link) + i64::from(right.token.cost);
                if cost < best_cost {
                    best = Some(l);
                    best_cost = cost;
                }
            }
            let Some(best) = best else {
                return false;
            };
            right.prev = best;
            right.cost = best_cost;
            let x = pos + right.rlength;
            if x > len {
                return true;
            }
            nodes.push(right);
            ends[x].push(nodes.len() - 1);
            true
        };
        for pos in 0..len {
            if ends[pos].is_empty() {
                continue;
            }
            for node in self.lookup(bytes, pos).into_iter().rev() {
                connect(&mut nodes, &mut ends, pos, node);
            }
        }
        let eos = Node { prev: 0, ..bos };
        let Some(last) = (0..=len).rev().find(|&p| !ends[p].is_empty()) else {
            return Vec::new();
        };
        let before = nodes.len();
        connect(&mut nodes, &mut ends, last, eos);
        if nodes.len() == before {
            return Vec::new();
        }
        let mut path = Vec::new();
        let mut at = nodes[nodes.len() - 1].prev;
        while at != 0 && at != usize::MAX {
            let n = &nodes[at];
            path.push(Morph {
                span: n.start..n.start + n.length,
                token: n.token,
                origin: n.origin,
                path_cost: n.cost,
            });
            at = n.prev;
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_dictionaries_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let missing = Mecab::open(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(missing.contains("sys.dic"), "{missing}");
        std::fs::write(dir.path().join("sys.dic"), [0u8; 100]).expect("write");
        let magic = Mecab::open(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(magic.contains("not a MeCab dictionary"), "{magic}");
        // A header whose sections run past the file.
        let mut header = vec![0u8; 100];
        header[..4].copy_from_slice(&(100u32 ^ MAGIC).to_le_bytes());
        header[4..8].copy_from_slice(&VERSION.to_le_bytes());
        header[24..28].copy_from_slice(&8000u32.to_le_bytes());
        header[40..45].copy_from_slice(b"UTF-8");
        std::fs::write(dir.path().join("sys.dic"), &header).expect("write");
        let sizes = Mecab::open(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(sizes.contains("section sizes"), "{sizes}");
    }
}

//! Sudachi's binary system dictionary, format "V1" (SudachiPy 0.7,
//! `sudachidict_core` 20261015's `system.dic`), read in place from a memory
//! map: the description's named blocks, the connection matrix, the
//! double-array trie of index forms, the word-id lists, and each entry's
//! connection ids, cost and reading.
//!
//! All integers are little-endian; a malformed block reads as missing
//! (no word, the highest cost) rather than failing mid-sentence.

use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// The file's first bytes.
const MAGIC: &[u8; 16] = b"SudachiBinaryDic";

/// The format version SudachiPy 0.7 reads.
const VERSION: u64 = 1;

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::JapaneseData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A byte range of the file.
#[derive(Clone, Copy, Debug, Default)]
struct Block {
    start: usize,
    len: usize,
}

/// An unsigned LEB128 integer at `*pos`, which moves past it.
fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

fn utf8_string(bytes: &[u8], pos: &mut usize) -> Option<String> {
    let len = usize::try_from(varint(bytes, pos)?).ok()?;
    let s = bytes.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    String::from_utf8(s.to_vec()).ok()
}

/// The system dictionary.
pub struct Dictionary {
    bytes: Mmap,
    connection: Block,
    /// The matrix's row length (left ids of the previous word's side).
    num_left: usize,
    trie: Block,
    word_pointers: Block,
    entries: Block,
    strings: Block,
}

impl Dictionary {
    /// Maps `system.dic` and checks its magic, version and blocks.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).map_err(|e| bad(path, format!("cannot open it ({e})")))?;
        // SAFETY: the map is read-only, and the voice store never rewrites a
        // dictionary in place (it installs by renaming a finished folder),
        // so the bytes do not change under the map. Every read below is
        // bounds-checked, so even a truncated file cannot be read past.
        let bytes =
            unsafe { Mmap::map(&file) }.map_err(|e| bad(path, format!("cannot map it ({e})")))?;
        if bytes.get(..16) != Some(MAGIC.as_slice()) {
            return Err(bad(
                path,
                "not a Sudachi dictionary (no SudachiBinaryDic magic)",
            ));
        }
        let version = bytes
            .get(16..24)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        if version != Some(VERSION) {
            return Err(bad(
                path,
                format!("Sudachi dictionary format {version:?}, but SudachiPy 0.7's format {VERSION} is needed"),
            ));
        }
        let truncated = || bad(path, "its description is truncated");
        let mut pos = 40;
        for _ in 0..3 {
            utf8_string(&bytes, &mut pos).ok_or_else(truncated)?; // comment, signature, reference
        }
        for _ in 0..2 {
            varint(&bytes, &mut pos).ok_or_else(truncated)?; // entry counts
        }
        let count = varint(&bytes, &mut pos).ok_or_else(truncated)?;
        let mut blocks = std::collections::HashMap::new();
        for _ in 0..count {
            let name = utf8_string(&bytes, &mut pos).ok_or_else(truncated)?;
            let start = varint(&bytes, &mut pos).ok_or_else(truncated)?;
            let len = varint(&bytes, &mut pos).ok_or_else(truncated)?;
            blocks.insert(name, (start, len));
        }
        let block = |name: &str| -> Result<Block> {
            let &(start, len) = blocks
                .get(name)
                .ok_or_else(|| bad(path, format!("it has no {name} block")))?;
            let (start, len) = (usize::try_from(start), usize::try_from(len));
            match (start, len) {
                (Ok(start), Ok(len))
                    if start.checked_add(len).is_some_and(|e| e <= bytes.len()) =>
                {
                    Ok(Block { start, len })
                }
                _ => Err(bad(
                    path,
                    format!("its {name} block lies past the end of the file"),
                )),
            }
        };
        let connection = block("ConnMatrix")?;
        let trie = block("TrieIndex")?;
        let word_pointers = block("WordPointers")?;
        let entries = block("Entries")?;
        let strings = block("Strings")?;
        let dims = |at: usize| {
            bytes
                .get(connection.start + at..connection.start + at + 2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
        };
        let (Some(num_left), Some(num_right)) = (dims(0), dims(2)) else {
            return Err(bad(path, "its connection matrix is truncated"));
        };
        let (num_left, num_right) = (usize::try_from(num_left), usize::try_from(num_right));
        let (Ok(num_left), Ok(num_right)) = (num_left, num_right) else {
            return Err(bad(path, "its connection matrix has a negative size"));
        };
        if 4 + 2 * num_left * num_right > connection.len {
            return Err(bad(
                path,
                "its connection matrix is smaller than its size says",
            ));
        }
        Ok(Self {
            bytes,
            connection,
            num_left,
            trie,
            word_pointers,
            entries,
            strings,
        })
    }

    fn bytes_at<const N: usize>(&self, block: Block, offset: usize) -> Option<[u8; N]> {
        if offset.checked_add(N)? > block.len {
            return None;
        }
        let at = block.start + offset;
        self.bytes.get(at..at + N)?.try_into().ok()
    }

    /// The cost of a word whose right id is `right` followed by one whose
    /// left id is `left` (the ids read as u16; a cell outside the matrix
    /// costs `i16::MAX`, SudachiPy's "never").
    pub fn connect_cost(&self, right: i16, left: i16) -> i16 {
        let index = usize::from(left as u16) * self.num_left + usize::from(right as u16);
        self.bytes_at::<2>(self.connection, 4 + 2 * index)
            .map_or(i16::MAX, i16::from_le_bytes)
    }

    fn trie_unit(&self, index: u32) -> Option<u32> {
        self.bytes_at::<4>(self.trie, 4 * usize::try_from(index).ok()?)
            .map(u32::from_le_bytes)
    }

    /// Every index form that is a prefix of `text[from..]`: its word-id
    /// list's place and the end of the match (a byte offset in `text`),
    /// shortest first. A darts-clone double array.
    pub fn prefixes(&self, text: &[u8], from: usize, out: &mut Vec<(u32, usize)>) {
        out.clear();
        let offset = |u: u32| (u >> 10) << ((u & 0x200) >> 6);
        let Some(root) = self.trie_unit(0) else {
            return;
        };
        let mut node = offset(root);
        for (i, &k) in text.iter().enumerate().skip(from) {
            node ^= u32::from(k);
            let Some(unit) = self.trie_unit(node) else {
                return;
            };
            if unit & 0x8000_00ff != u32::from(k) {
                return;
            }
            node ^= offset(unit);
            if (unit >> 8) & 1 == 1 {
                if let Some(value) = self.trie_unit(node) {
                    out.push((value & 0x7fff_ffff, i + 1));
                }
            }
        }
    }

    /// The entries of one index form (`prefixes`' first value), in
    /// increasing entry id.
    pub fn word_ids(&self, place: u32, out: &mut Vec<u32>) {
        out.clear();
        let Some(list) = usize::try_from(place)
            .ok()
            .filter(|&p| p < self.word_pointers.len)
            .and_then(|p| {
                self.bytes.get(
                    self.word_pointers.start + p..self.word_pointers.start + self.word_pointers.len,
                )
            })
        else {
            return;
        };
        let mut pos = 0;
        let Some(count) = varint(list, &mut pos) else {
            return;
        };
        let mut id = 0u32;
        for _ in 0..count {
            let Some(delta) = varint(list, &mut pos).and_then(|d| u32::try_from(d).ok()) else {
                return;
            };
            id = id.wrapping_add(delta);
            out.push(id);
        }
    }

    /// An entry's left id, right id and cost.
    pub fn params(&self, entry: u32) -> Option<(i16, i16, i16)> {
        let b = self.bytes_at::<6>(self.entries, 8 * usize::try_from(entry).ok()?)?;
        Some((
            i16::from_le_bytes([b[0], b[1]]),
            i16::from_le_bytes([b[2], b[3]]),
            i16::from_le_bytes([b[4], b[5]]),
        ))
    }

    /// An entry's reading form (katakana for Japanese words), as stored.
    pub fn reading(&self, entry: u32) -> String {
        let Some(pointer) = usize::try_from(entry)
            .ok()
            .and_then(|e| self.bytes_at::<4>(self.entries, 8 * e + 12))
            .map(u32::from_le_bytes)
        else {
            return String::new();
        };
        let (len, offset) = decode_string_pointer(pointer);
        let units: Vec<u16> = (0..len)
            .map_while(|k| {
                self.bytes_at::<2>(self.strings, 2 * (offset + k))
                    .map(u16::from_le_bytes)
            })
            .collect();
        String::from_utf16_lossy(&units)
    }
}

/// A string pointer's (length, offset), both in UTF-16 code units: short
/// strings keep their length in the top 5 bits; longer ones add bits from
/// the offset's field, whose offset is then aligned.
fn decode_string_pointer(x: u32) -> (usize, usize) {
    let base = x >> 27;
    let extra_bits = base.saturating_sub(19);
    let (extra, implicit) = if extra_bits == 0 {
        (0, 0)
    } else {
        (
            (x & 0x07ff_0000) >> (28 - extra_bits),
            1 << (extra_bits - 1),
        )
    };
    let len = (base - extra_bits) + (extra | implicit);
    let align = extra_bits.saturating_sub(1);
    let offset = (x & (0x07ff_ffff >> align)) << align;
    (len as usize, offset as usize)
}

#[cfg(test)]
mod tests {
    use super::{decode_string_pointer, varint};

    #[test]
    fn short_and_long_string_pointers_decode() {
        // 19 units or fewer: the length in the top 5 bits.
        assert_eq!(decode_string_pointer((5 << 27) | 1234), (5, 1234));
        // Longer: base 20 adds one bit (the implicit 1), offset unaligned.
        assert_eq!(decode_string_pointer((20 << 27) | 77), (20, 77));
        // base 21: two extra bits, one taken from bit 26, offset 2-aligned.
        let x = (21 << 27) | (1 << 26) | 100;
        assert_eq!(decode_string_pointer(x), (19 + 0b11, 200));
    }

    #[test]
    fn varints_read_seven_bits_a_byte() {
        let mut pos = 0;
        assert_eq!(varint(&[0xac, 0x02, 0x05], &mut pos), Some(300));
        assert_eq!(varint(&[0xac, 0x02, 0x05], &mut pos), Some(5));
        assert_eq!(varint(&[0x80], &mut 0), None);
    }
}

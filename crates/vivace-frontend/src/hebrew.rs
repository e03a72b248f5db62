//! Piper 1.8's Hebrew front end (`phoneme_type: hebrew`): the character
//! tables around Nakdimon (which restores the vowel points; the model
//! itself is `vivace_models::nakdimon`) and the rules of piper-tts's
//! `hebrew/hebrew_ipa.py` that turn pointed Hebrew into IPA: letters and
//! their points grouped into syllable-like segments, shva read or silent,
//! stress on the last syllable (the first of two when the last is closed).

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;

/// "Rafe": Nakdimon's "no point here", removed from its output.
const RAFE: char = '\u{5BF}';
const DAGESH: char = '\u{5BC}';
const SHIN_DOT: char = '\u{5C1}';
const SIN_DOT: char = '\u{5C2}';
const GERESH: char = '\u{5F3}';

const SHEVA: char = '\u{5B0}';
const HATAF_SEGOL: char = '\u{5B1}';
const HATAF_PATAH: char = '\u{5B2}';
const HATAF_QAMATS: char = '\u{5B3}';
const HIRIQ: char = '\u{5B4}';
const TSERE: char = '\u{5B5}';
const SEGOL: char = '\u{5B6}';
const PATAH: char = '\u{5B7}';
const QAMATS: char = '\u{5B8}';
const HOLAM: char = '\u{5B9}';
const QUBUTZ: char = '\u{5BB}';
const QAMATS_QATAN: char = '\u{5C7}';

const VOWEL_MARKS: [char; 12] = [
    SHEVA,
    HATAF_SEGOL,
    HATAF_PATAH,
    HATAF_QAMATS,
    HIRIQ,
    TSERE,
    SEGOL,
    PATAH,
    QAMATS,
    HOLAM,
    QUBUTZ,
    QAMATS_QATAN,
];

/// Whether the text carries any point (U+05B0–U+05C7): such text is taken
/// as already pointed and not given to Nakdimon.
pub fn has_niqqud(text: &str) -> bool {
    text.chars().any(is_point)
}

fn is_point(c: char) -> bool {
    ('\u{5B0}'..='\u{5C7}').contains(&c)
}

/// The text without its points (what Nakdimon reads).
pub fn remove_niqqud(text: &str) -> String {
    text.chars().filter(|&c| !is_point(c)).collect()
}

/// Nakdimon's input alphabet: the mask token, `H`, `O`, `5`, twelve
/// punctuation marks and the 27 Hebrew letters.
fn letter_table() -> Vec<char> {
    let mut table = vec!['\0', 'H', 'O', '5'];
    table.extend([' ', '!', '"', '\'', '(', ')', ',', '-', '.', ':', ';', '?']);
    table.extend('\u{5D0}'..='\u{5EA}');
    table
}

/// `normalize` of Nakdimon: a character as the model's alphabet spells it.
fn normalize(c: char) -> char {
    const VALID: &str = " !\"'(),-.:;?";
    // The letters' range holds the final forms too, so Nakdimon's mapping
    // of final to regular forms never applies.
    if VALID.contains(c) || ('\u{5D0}'..='\u{5EA}').contains(&c) {
        return c;
    }
    match c {
        '\n' | '\t' => ' ',
        '־' | '‒' | '–' | '—' | '―' | '−' => '-',
        '[' => '(',
        ']' => ')',
        '´' | '‘' | '’' => '\'',
        '“' | '”' | '״' => '"',
        '…' => ',',
        'ײ' | 'װ' | 'ױ' => 'H',
        _ if unicode_categories::UnicodeCategories::is_number_decimal_digit(c) => '5',
        _ => 'O',
    }
}

/// Nakdimon's input ids for `text` (its points removed).
pub fn nakdimon_ids(text: &str) -> Vec<usize> {
    let table = letter_table();
    remove_niqqud(text)
        .chars()
        .map(|c| {
            let n = normalize(c);
            table.iter().position(|&t| t == n).unwrap_or(2)
        })
        .collect()
}

/// The text with the points Nakdimon predicted (`niqqud`, `dagesh`, `sin`:
/// each character's class), merged in Nakdimon's order (dagesh, shin dot,
/// vowel) and without rafe.
pub fn restore_points(text: &str, niqqud: &[usize], dagesh: &[usize], sin: &[usize]) -> String {
    let niqqud_chars: Vec<Option<char>> = [None, Some(RAFE)]
        .into_iter()
        .chain(('\u{5B0}'..='\u{5BC}').map(Some))
        .chain([Some(PATAH)])
        .collect();
    let dagesh_chars = [None, Some(RAFE), Some(DAGESH)];
    let sin_chars = [None, Some(RAFE), Some(SHIN_DOT), Some(SIN_DOT)];
    let mut out = String::new();
    for (i, letter) in remove_niqqud(text).chars().enumerate() {
        out.push(letter);
        let pick = |table: &[Option<char>], classes: &[usize]| {
            classes
                .get(i)
                .and_then(|&k| table.get(k).copied().flatten())
        };
        if "בגדהוזטיכלמנספצקשתךף".contains(letter) {
            out.extend(pick(&dagesh_chars, dagesh));
        }
        if letter == 'ש' {
            out.extend(pick(&sin_chars, sin));
        }
        if "אבגדהוזחטיכלמנסעפצקרשתךן".contains(letter) {
            out.extend(pick(&niqqud_chars, niqqud));
        }
    }
    out.replace(RAFE, "")
}

/// A letter (or a geresh digraph's placeholder) with its points.
struct Glyph {
    base: String,
    marks: Vec<char>,
}

impl Glyph {
    fn has(&self, mark: char) -> bool {
        self.marks.contains(&mark)
    }

    fn base_is(&self, c: char) -> bool {
        let mut chars = self.base.chars();
        chars.next() == Some(c) && chars.next().is_none()
    }
}

struct Segment {
    onset: Vec<String>,
    nucleus: &'static str,
    coda: Vec<String>,
    dagesh: bool,
}

fn strip_taamim(s: &str) -> String {
    s.chars()
        .filter(|c| !('\u{591}'..='\u{5AF}').contains(c))
        .collect()
}

fn glyphs(word: &str) -> Vec<Glyph> {
    let word: String = strip_taamim(word).nfc().collect();
    let mut glyphs: Vec<Glyph> = Vec::new();
    for c in word.chars() {
        if canonical_combining_class(c) != 0 {
            if let Some(last) = glyphs.last_mut() {
                last.marks.push(c);
            }
        } else {
            glyphs.push(Glyph {
                base: c.to_string(),
                marks: Vec::new(),
            });
        }
    }
    // ג׳ ז׳ צ׳ become placeholders (which, as in Piper, map to nothing).
    let mut out = Vec::with_capacity(glyphs.len());
    let mut iter = glyphs.into_iter().peekable();
    while let Some(g) = iter.next() {
        let digraph = (g.base_is('ג') || g.base_is('ז') || g.base_is('צ'))
            && iter.peek().is_some_and(|n| n.base_is(GERESH));
        if digraph {
            iter.next();
            out.push(Glyph {
                base: format!("<IPA:{}>", g.base),
                marks: Vec::new(),
            });
        } else {
            out.push(g);
        }
    }
    out
}

/// `_map_consonant`: "<GLT>" for alef and ayin (decided later).
fn consonant(g: &Glyph, is_final: bool) -> &'static str {
    let mut chars = g.base.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return "";
    };
    let dagesh = g.has(DAGESH);
    match c {
        'א' | 'ע' => "<GLT>",
        'ה' => {
            if is_final && !dagesh {
                ""
            } else {
                "h"
            }
        }
        'י' => "j",
        'ו' => "v",
        'ש' => {
            if !g.has(SHIN_DOT) && g.has(SIN_DOT) {
                "s"
            } else {
                "ʃ"
            }
        }
        'ב' => {
            if dagesh {
                "b"
            } else {
                "v"
            }
        }
        'כ' | 'ך' => {
            if dagesh {
                "k"
            } else {
                "χ"
            }
        }
        'פ' | 'ף' => {
            if dagesh {
                "p"
            } else {
                "f"
            }
        }
        'ג' => "g",
        'ד' => "d",
        'ח' => "χ",
        'ט' | 'ת' => "t",
        'ל' => "l",
        'מ' | 'ם' => "m",
        'נ' | 'ן' => "n",
        'ס' => "s",
        'צ' | 'ץ' => "t͡s",
        'ק' => "k",
        'ר' => "ʁ",
        'ז' => "z",
        _ => "",
    }
}

/// `_map_basic_vowel`: the nucleus and whether it is a vowel (shva is not).
fn basic_vowel(g: &Glyph) -> (&'static str, bool) {
    for (mark, v) in [
        (QAMATS_QATAN, "o"),
        (QUBUTZ, "u"),
        (HIRIQ, "i"),
        (TSERE, "e"),
        (SEGOL, "e"),
        (PATAH, "a"),
        (QAMATS, "a"),
        (HATAF_PATAH, "a"),
        (HATAF_SEGOL, "e"),
        (HATAF_QAMATS, "o"),
    ] {
        if g.has(mark) {
            return (v, true);
        }
    }
    if g.has(SHEVA) {
        return ("ə", false);
    }
    ("", false)
}

fn segments(word: &str) -> Vec<Segment> {
    let glyphs = glyphs(word);
    let mut segs: Vec<Segment> = Vec::new();
    let mut onset: Vec<String> = Vec::new();
    let seg = |onset: Vec<String>, nucleus, dagesh| Segment {
        onset,
        nucleus,
        coda: Vec::new(),
        dagesh,
    };
    let mut i = 0;
    while i < glyphs.len() {
        let g = &glyphs[i];
        let next = glyphs.get(i + 1);
        let is_final = i + 1 == glyphs.len();
        let shuruk =
            g.base_is('ו') && g.has(DAGESH) && !g.marks.iter().any(|m| VOWEL_MARKS.contains(m));
        if shuruk {
            segs.push(seg(std::mem::take(&mut onset), "u", false));
            i += 1;
            continue;
        }
        let hiriq_yod = g.has(HIRIQ)
            && next.is_some_and(|n| {
                n.base_is('י') && !n.marks.iter().any(|m| VOWEL_MARKS.contains(m))
            });
        if hiriq_yod {
            let cons = consonant(g, false);
            if !cons.is_empty() && cons != "<GLT>" {
                onset.push(cons.into());
            }
            segs.push(seg(std::mem::take(&mut onset), "i", false));
            i += 2;
            continue;
        }
        if g.base_is('ו') && g.has(HOLAM) && !g.has(DAGESH) {
            segs.push(seg(std::mem::take(&mut onset), "o", false));
            i += 1;
            continue;
        }
        let cons = consonant(g, is_final);
        let (v, vocalic) = basic_vowel(g);
        if vocalic || g.has(SHEVA) {
            if !cons.is_empty() && cons != "<GLT>" {
                onset.push(cons.into());
            }
            let dagesh = !vocalic && g.has(DAGESH);
            segs.push(seg(
                std::mem::take(&mut onset),
                if vocalic { v } else { "ə" },
                dagesh,
            ));
        } else if cons == "<GLT>" {
            onset.push("ʔ".into());
        } else if !cons.is_empty() {
            onset.push(cons.into());
        }
        i += 1;
    }
    if !onset.is_empty() {
        if let Some(last) = segs.last_mut() {
            last.coda.extend(onset);
        }
    }
    segs
}

/// `_resolve_sheva_and_qamats`: a shva is read (as /e/) at the word's start,
/// under a doubling dagesh and after a silent shva; otherwise silent, its
/// consonant closing the syllable before.
fn resolve_shva(mut segs: Vec<Segment>) -> Vec<Segment> {
    let mut prev_silent = false;
    for i in 0..segs.len() {
        if segs[i].nucleus != "ə" {
            prev_silent = false;
            continue;
        }
        let read = i == 0 || (segs[i].dagesh && i > 0) || prev_silent;
        if read {
            segs[i].nucleus = "e";
            prev_silent = false;
        } else {
            let onset = std::mem::take(&mut segs[i].onset);
            segs[i - 1].coda.extend(onset);
            segs[i].nucleus = "";
            prev_silent = true;
        }
    }
    let mut merged: Vec<Segment> = Vec::new();
    for s in segs {
        if s.nucleus.is_empty() {
            if let Some(last) = merged.last_mut() {
                last.coda.extend(s.onset);
            } else {
                merged.push(s);
            }
            continue;
        }
        merged.push(s);
    }
    merged
}

/// One pointed word in IPA (`hebrew_word_to_ipa`).
pub fn word_to_ipa(word: &str) -> String {
    let segs = resolve_shva(segments(word));
    let stress = if segs.len() == 2 && !segs[1].coda.is_empty() {
        Some(0)
    } else {
        segs.len().checked_sub(1)
    };
    let mut ipa = String::new();
    for (i, s) in segs.iter().enumerate() {
        ipa.push_str(&s.onset.concat());
        if Some(i) == stress {
            ipa.push('ˈ');
        }
        ipa.push_str(s.nucleus);
        ipa.push_str(&s.coda.concat());
    }
    // A glottal stop stays only before a vowel (or the stress mark).
    let chars: Vec<char> = ipa.chars().collect();
    let mut out = String::with_capacity(ipa.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == 'ʔ' && !chars.get(i + 1).is_some_and(|n| "aeiouəˈ".contains(*n)) {
            continue;
        }
        if c != '\u{361}' {
            out.push(c);
        }
    }
    out
}

/// Pointed Hebrew text in IPA (`hebrew_to_ipa`): word by word, joined by
/// single spaces.
pub fn to_ipa(text: &str) -> String {
    let text: String = strip_taamim(text).nfc().collect();
    text.split_whitespace()
        .map(word_to_ipa)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nakdimon_alphabet_has_43_entries_in_its_order() {
        let table = letter_table();
        assert_eq!(table.len(), 43);
        assert_eq!(table[4], ' ');
        assert_eq!(table[16], 'א');
        assert_eq!(nakdimon_ids("שלום!"), vec![41, 28, 21, 29, 5]);
    }
}

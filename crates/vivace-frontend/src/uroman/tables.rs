//! uroman's data files, read as `Uroman.load_resource_files` reads them:
//! the romanization rules (`romanization-auto-table.txt`,
//! `UnicodeDataOverwrite.txt`, `romanization-table.txt`,
//! `Chinese_to_Pinyin.txt`), the scripts (`Scripts.txt`), the numerals
//! (`NumProps.jsonl`), the script properties of characters
//! (`UnicodeDataProps*.txt`) and the Unicode character database
//! (`UnicodeData.txt`: names, categories, decompositions), which the Python
//! code takes from its own `unicodedata` module.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};

/// Where a rule came from (`prov`): the automatic table and the overwrite
/// file can be replaced by a later plain rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provenance {
    /// `romanization-auto-table.txt` (`ud`).
    UnicodeData,
    /// `UnicodeDataOverwrite.txt` (`ow`).
    Overwrite,
    /// Anything else (the manual table, pinyin, Thai cancellation rules).
    Other,
}

/// One romanization rule for a source string.
#[derive(Debug, Clone)]
pub(crate) struct RomRule {
    pub t: Option<String>,
    pub prov: Provenance,
    pub lcodes: Vec<String>,
    pub use_only_at_start_of_word: bool,
    pub dont_use_at_start_of_word: bool,
    pub use_only_at_end_of_word: bool,
    pub dont_use_at_end_of_word: bool,
    pub use_only_for_whole_word: bool,
    pub t_at_end_of_syllable: Option<String>,
    pub n_restr: usize,
}

impl RomRule {
    fn plain(t: &str, prov: Provenance) -> Self {
        Self {
            t: Some(t.to_string()),
            prov,
            lcodes: Vec::new(),
            use_only_at_start_of_word: false,
            dont_use_at_start_of_word: false,
            use_only_at_end_of_word: false,
            dont_use_at_end_of_word: false,
            use_only_for_whole_word: false,
            t_at_end_of_syllable: None,
            n_restr: 0,
        }
    }
}

/// A numeral's properties (`NumProps.jsonl`).
#[derive(Debug, Clone)]
pub(crate) struct NumProp {
    pub value: Option<i128>,
    pub fraction: Option<(i128, i128)>,
    pub base: Option<i128>,
    pub kind: Option<String>,
    pub script: Option<String>,
    pub is_large_power: bool,
}

/// One character of `UnicodeData.txt`.
#[derive(Debug, Clone)]
pub(crate) struct CharData {
    pub name: String,
    pub category: [u8; 2],
    pub decomposition: String,
    /// The numeric value field (`5`, `1/2`), empty when none.
    pub numeric: String,
}

/// Everything uroman reads at start.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub rom_rules: HashMap<String, Vec<RomRule>>,
    pub s_prefix: HashSet<String>,
    /// `name`, `tone-mark` and `syllable-info` of `UnicodeDataOverwrite.txt`.
    pub names: HashMap<char, String>,
    pub tone_marks: HashSet<char>,
    pub syllable_info: HashMap<char, String>,
    /// Character → script name (`UnicodeDataProps*.txt`).
    pub script_of: HashMap<char, String>,
    pub vowel_signs: HashSet<char>,
    pub medial_consonant_signs: HashSet<char>,
    pub viramas: HashSet<char>,
    /// Lower-case script name → its abugida default vowels.
    pub abugida_vowels: HashMap<String, Vec<String>>,
    pub num_props: HashMap<String, NumProp>,
    /// Strings marked `is-minus-sign`, `is-plus-sign`, `fraction-connector`
    /// in the rule files, in file order.
    pub minus_signs: Vec<String>,
    pub plus_signs: Vec<String>,
    pub fraction_connectors: Vec<String>,
    pub chars: HashMap<char, CharData>,
    /// `First`/`Last` ranges of `UnicodeData.txt` (CJK, Hangul, ...).
    pub ranges: Vec<(u32, u32, CharData)>,
}

/// The value of `::slot` in a `::a x ::b y` line, as uroman's
/// `slot_value_in_double_colon_del_list` finds it: the last `::slot`
/// preceded by white space (or starting the line) and followed by white
/// space or the end; its value runs to the next ` ::x`, trimmed.
pub(crate) fn slot_value<'a>(line: &'a str, slot: &str) -> Option<&'a str> {
    let key = format!("::{slot}");
    let mut found = None;
    let mut from = 0;
    while let Some(i) = line[from..].find(&key).map(|i| i + from) {
        let before_ok = i == 0
            || line[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
        let after = &line[i + key.len()..];
        let after_ok = after.is_empty() || after.starts_with(char::is_whitespace);
        if before_ok && after_ok {
            found = Some(after);
        }
        from = i + key.len();
    }
    let after = found?;
    // The value ends at the first white space followed by `::` and a
    // non-space character.
    let mut end = after.len();
    for (i, c) in after.char_indices() {
        if c.is_whitespace() {
            let rest = after[i..].trim_start();
            if let Some(next) = rest.strip_prefix("::") {
                if next.starts_with(|n: char| !n.is_whitespace()) {
                    end = i;
                    break;
                }
            }
        }
    }
    Some(after[..end].trim())
}

/// uroman's `dequote_string`: `'x'`, `"x"` or `“x”` → `x`.
fn dequote(s: &str) -> &str {
    let t = s.trim();
    for (open, close) in [('\'', '\''), ('"', '"'), ('“', '”')] {
        if t.len() >= open.len_utf8() + close.len_utf8()
            && t.starts_with(open)
            && t.ends_with(close)
        {
            return &t[open.len_utf8()..t.len() - close.len_utf8()];
        }
    }
    s
}

/// Drops a comment: two or more white-space characters, `#`, the rest.
fn strip_comment(line: &str) -> &str {
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    for k in 0..bytes.len() {
        if bytes[k].1 != '#' {
            continue;
        }
        let spaces = bytes[..k]
            .iter()
            .rev()
            .take_while(|(_, c)| c.is_whitespace() && *c != '\n')
            .count();
        if spaces >= 2 {
            return &line[..bytes[k - spaces].0];
        }
    }
    line
}

fn read(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .map_err(|e| Error::Romanizer(format!("cannot read uroman's {}: {e}", path.display())))
}

/// The lines of a data file that carry data (no comment or blank line).
fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(strip_comment)
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

impl Tables {
    /// Reads uroman's data folder (its `data/`).
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let mut t = Self::default();
        t.load_unicode_data(&read(dir, "UnicodeData.txt")?);
        t.load_rom_file(
            &read(dir, "romanization-auto-table.txt")?,
            Provenance::UnicodeData,
            false,
        );
        t.load_rom_file(
            &read(dir, "UnicodeDataOverwrite.txt")?,
            Provenance::Overwrite,
            true,
        );
        t.load_rom_file(
            &read(dir, "romanization-table.txt")?,
            Provenance::Other,
            false,
        );
        t.load_pinyin(&read(dir, "Chinese_to_Pinyin.txt")?);
        t.load_scripts(&read(dir, "Scripts.txt")?);
        t.load_num_props(&read(dir, "NumProps.jsonl")?)?;
        for file in [
            "UnicodeDataProps.txt",
            "UnicodeDataPropsCJK.txt",
            "UnicodeDataPropsHangul.txt",
        ] {
            t.load_script_props(&read(dir, file)?);
        }
        Ok(t)
    }

    fn register_prefix(&mut self, s: &str) {
        let mut prefix = String::new();
        for c in s.chars() {
            prefix.push(c);
            self.s_prefix.insert(prefix.clone());
        }
    }

    fn push_rule(&mut self, s: &str, rule: RomRule) {
        self.register_prefix(s);
        let rules = self.rom_rules.entry(s.to_string()).or_default();
        let unrestricted = rule.n_restr == 0;
        if rules.len() == 1
            && matches!(
                rules[0].prov,
                Provenance::UnicodeData | Provenance::Overwrite
            )
            && unrestricted
        {
            rules[0] = rule; // overwrite
        } else {
            rules.push(rule);
        }
    }

    fn load_rom_file(&mut self, text: &str, prov: Provenance, u2r: bool) {
        for line in data_lines(text) {
            let (s, t, t_end_of_syllable) = if u2r {
                let Some(u) = slot_value(line, "u").map(dequote) else {
                    continue;
                };
                let Some(c) = u32::from_str_radix(u, 16).ok().and_then(char::from_u32) else {
                    continue;
                };
                let t = slot_value(line, "r").map(|v| dequote(v).to_string());
                if let Some(name) = slot_value(line, "name").filter(|n| !n.is_empty()) {
                    self.names.insert(c, name.to_string());
                }
                if slot_value(line, "tone-mark").is_some_and(|v| !v.is_empty()) {
                    self.tone_marks.insert(c);
                }
                if let Some(info) = slot_value(line, "syllable-info").filter(|v| !v.is_empty()) {
                    self.syllable_info.insert(c, info.to_string());
                }
                (Some(c.to_string()), t, None)
            } else {
                (
                    slot_value(line, "s").map(|v| dequote(v).to_string()),
                    slot_value(line, "t").map(|v| dequote(v).to_string()),
                    slot_value(line, "t-end-of-syllable").map(|v| dequote(v).to_string()),
                )
            };
            let Some(s) = s else {
                continue;
            };
            let mut t = t;
            if let Some(modified) = self.second_rom_filter(&s, t.as_deref()) {
                t = Some(modified);
            }
            for (slot, list) in [
                ("is-minus-sign", &mut self.minus_signs),
                ("is-plus-sign", &mut self.plus_signs),
            ] {
                if slot_value(line, slot).is_some() && !list.contains(&s) {
                    list.push(s.clone());
                }
            }
            if slot_value(line, "fraction-connector").is_some_and(|v| !v.is_empty())
                && !self.fraction_connectors.contains(&s)
            {
                self.fraction_connectors.push(s.clone());
            }
            let lcodes = slot_value(line, "lcode")
                .map(split_list)
                .unwrap_or_default();
            let has = |slot: &str| slot_value(line, slot).is_some();
            let flags = [
                has("use-only-at-start-of-word"),
                has("dont-use-at-start-of-word"),
                has("use-only-at-end-of-word"),
                has("dont-use-at-end-of-word"),
                has("use-only-for-whole-word"),
            ];
            let n_restr = usize::from(!lcodes.is_empty()) + flags.iter().filter(|f| **f).count();
            let rule = RomRule {
                t,
                prov,
                lcodes,
                use_only_at_start_of_word: flags[0],
                dont_use_at_start_of_word: flags[1],
                use_only_at_end_of_word: flags[2],
                dont_use_at_end_of_word: flags[3],
                use_only_for_whole_word: flags[4],
                t_at_end_of_syllable: t_end_of_syllable,
                n_restr,
            };
            self.push_rule(&s, rule);
        }
        // Thai: the cancellation mark silences the letter (and vowel
        // modifier) before it; added after each file where no rule exists.
        let cancel = '\u{0E4C}';
        for cp in 0x0E01..0x0E4C {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let s = format!("{c}{cancel}");
            if self.rom_rules.get(&s).is_none_or(Vec::is_empty) {
                self.register_prefix(&s);
                self.rom_rules
                    .insert(s, vec![RomRule::plain("", Provenance::Other)]);
            }
        }
        let modifiers: Vec<char> = ['\u{0E31}', '\u{0E47}']
            .into_iter()
            .chain((0x0E33..0x0E3B).filter_map(char::from_u32))
            .collect();
        for c1 in (0x0E01..0x0E2F).filter_map(char::from_u32) {
            for &v in &modifiers {
                let s = format!("{c1}{v}{cancel}");
                if self.rom_rules.get(&s).is_none_or(Vec::is_empty) {
                    self.register_prefix(&s);
                    self.rom_rules
                        .insert(s, vec![RomRule::plain("", Provenance::Other)]);
                }
            }
        }
    }

    /// uroman's `second_rom_filter`: multi-word romanizations taken from
    /// character names are cut to their last word, or replaced by the
    /// character itself.
    fn second_rom_filter(&self, s: &str, rom: Option<&str>) -> Option<String> {
        let rom = rom?;
        if !rom.contains(' ') {
            return None;
        }
        let mut chars = s.chars();
        let name = match (chars.next(), chars.next()) {
            (Some(c), None) => self.chr_name(c),
            _ => String::new(),
        };
        let words: Vec<&str> = rom.split_whitespace().collect();
        if name.contains("MYANMAR VOWEL SIGN KAYAH") {
            if let Some(i) = words.iter().position(|w| *w == "kayah") {
                if i + 2 == words.len() {
                    return Some(words[i + 1].to_string());
                }
            }
        }
        if name.contains("MENDE KIKAKUI SYLLABLE") && words.len() >= 2 {
            let m = words[words.len() - 2];
            if m.len() > 1 && m.starts_with('m') && m[1..].bytes().all(|b| b.is_ascii_digit()) {
                return Some(words[words.len() - 1].to_string());
            }
        }
        // `\S\s+\S`: two words.
        if rom.trim().contains(char::is_whitespace) {
            return Some(s.to_string());
        }
        None
    }

    fn load_pinyin(&mut self, text: &str) {
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(chinese), Some(pinyin), None) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rom = self.de_accent_pinyin(pinyin);
            self.register_prefix(chinese);
            let rule = RomRule::plain(&rom, Provenance::Other);
            self.rom_rules
                .entry(chinese.to_string())
                .or_default()
                .push(rule);
        }
    }

    /// "liú" → "liu", "ü" → "u".
    fn de_accent_pinyin(&self, s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            let decomposition = self.decomposition(c);
            if decomposition.is_empty() {
                out.push(c);
                continue;
            }
            let parts: Vec<Option<char>> = decomposition
                .split_whitespace()
                .map(|x| u32::from_str_radix(x, 16).ok().and_then(char::from_u32))
                .collect();
            if parts.iter().any(Option::is_none) {
                continue;
            }
            let letters: Vec<char> = parts
                .into_iter()
                .flatten()
                .filter(|&x| self.category(x).starts_with('L'))
                .collect();
            if letters.len() == 1 {
                out.push(letters[0]);
            }
        }
        out.replace('ü', "u")
    }

    fn load_scripts(&mut self, text: &str) {
        for line in data_lines(text) {
            let Some(name) = slot_value(line, "script-name").filter(|n| !n.is_empty()) else {
                continue;
            };
            let lower = name.to_lowercase();
            if self.abugida_vowels.contains_key(&lower) {
                continue;
            }
            let vowels = slot_value(line, "abugida-default-vowel")
                .map(split_list)
                .unwrap_or_default();
            for alt in slot_value(line, "alt-script-name")
                .map(split_list)
                .unwrap_or_default()
            {
                self.abugida_vowels
                    .entry(alt.to_lowercase())
                    .or_insert_with(|| vowels.clone());
            }
            self.abugida_vowels.insert(lower, vowels);
        }
    }

    fn load_num_props(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let d: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| Error::Romanizer(format!("uroman's NumProps.jsonl: {e}")))?;
            let Some(txt) = d["txt"].as_str().filter(|t| !t.is_empty()) else {
                continue;
            };
            let int = |v: &serde_json::Value| {
                v.as_i64()
                    .map(i128::from)
                    .or_else(|| v.as_u64().map(i128::from))
            };
            let fraction = d["fraction"]
                .as_array()
                .and_then(|f| Some((int(f.first()?)?, int(f.get(1)?)?)));
            self.num_props.insert(
                txt.to_string(),
                NumProp {
                    value: int(&d["value"]),
                    fraction,
                    base: int(&d["base"]),
                    kind: d["type"].as_str().map(str::to_string),
                    script: d["script"].as_str().map(str::to_string),
                    is_large_power: d["is-large-power"].as_bool().unwrap_or(false),
                },
            );
        }
        Ok(())
    }

    fn load_script_props(&mut self, text: &str) {
        for line in data_lines(text) {
            let Some(script) = slot_value(line, "script-name").filter(|n| !n.is_empty()) else {
                continue;
            };
            for slot in ["char", "numeral"] {
                for c in slot_value(line, slot).unwrap_or_default().chars() {
                    self.script_of.insert(c, script.to_string());
                }
            }
            for c in slot_value(line, "vowel-sign").unwrap_or_default().chars() {
                self.vowel_signs.insert(c);
            }
            for c in slot_value(line, "medial-consonant-sign")
                .unwrap_or_default()
                .chars()
            {
                self.medial_consonant_signs.insert(c);
            }
            for c in slot_value(line, "sign-virama").unwrap_or_default().chars() {
                self.viramas.insert(c);
            }
        }
    }

    fn load_unicode_data(&mut self, text: &str) {
        let mut range_start: Option<(u32, CharData)> = None;
        for line in text.lines() {
            let fields: Vec<&str> = line.split(';').collect();
            if fields.len() < 9 {
                continue;
            }
            let Ok(cp) = u32::from_str_radix(fields[0], 16) else {
                continue;
            };
            let cat = fields[2].as_bytes();
            let data = CharData {
                name: fields[1].to_string(),
                category: [
                    cat.first().copied().unwrap_or(b'C'),
                    cat.get(1).copied().unwrap_or(b'n'),
                ],
                decomposition: fields[5].to_string(),
                numeric: fields[8].to_string(),
            };
            if let Some(base) = fields[1].strip_suffix(", First>") {
                let name = base.trim_start_matches('<').to_uppercase();
                range_start = Some((cp, CharData { name, ..data }));
                continue;
            }
            if fields[1].ends_with(", Last>") {
                if let Some((first, data)) = range_start.take() {
                    self.ranges.push((first, cp, data));
                }
                continue;
            }
            if let Some(c) = char::from_u32(cp) {
                self.chars.insert(c, data);
            }
        }
    }

    fn char_data(&self, c: char) -> Option<&CharData> {
        self.chars.get(&c).or_else(|| {
            let cp = c as u32;
            self.ranges
                .iter()
                .find(|(a, b, _)| (*a..=*b).contains(&cp))
                .map(|(_, _, d)| d)
        })
    }

    /// Python's `unicodedata.name`, else the overwrite file's name, else "".
    pub(crate) fn chr_name(&self, c: char) -> String {
        let cp = c as u32;
        if let Some(d) = self.chars.get(&c) {
            if !d.name.starts_with('<') {
                return d.name.clone();
            }
        } else if let Some((_, _, d)) = self.ranges.iter().find(|(a, b, _)| (*a..=*b).contains(&cp))
        {
            if d.name.starts_with("CJK IDEOGRAPH") {
                return format!("CJK UNIFIED IDEOGRAPH-{cp:04X}");
            }
            if d.name.starts_with("HANGUL SYLLABLE") {
                return "HANGUL SYLLABLE".to_string();
            }
            if d.name.starts_with("TANGUT IDEOGRAPH") {
                return format!("TANGUT IDEOGRAPH-{cp:04X}");
            }
        }
        self.names.get(&c).cloned().unwrap_or_default()
    }

    /// The two-letter general category (`Cn` for unassigned).
    pub(crate) fn category(&self, c: char) -> &str {
        match self.char_data(c) {
            Some(d) => std::str::from_utf8(&d.category).unwrap_or("Cn"),
            None => "Cn",
        }
    }

    /// The decomposition field (`<compat> 0020 0308`, or empty).
    pub(crate) fn decomposition(&self, c: char) -> &str {
        self.char_data(c).map_or("", |d| d.decomposition.as_str())
    }

    /// Python's `unicodedata.numeric(c, None)` being true (a value, not 0).
    pub(crate) fn is_numeric(&self, c: char) -> bool {
        self.numeric(c).is_some_and(|v| v != 0.0)
    }

    /// The numeric value of `UnicodeData.txt` (`1/2` → 0.5).
    pub(crate) fn numeric(&self, c: char) -> Option<f64> {
        let field = &self.char_data(c)?.numeric;
        match field.split_once('/') {
            Some((n, d)) => Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?),
            None if field.is_empty() => None,
            None => field.parse().ok(),
        }
    }

    /// Python's `str.isalpha` for one character (categories Lu Ll Lt Lm Lo).
    pub(crate) fn is_alpha(&self, c: char) -> bool {
        self.category(c).starts_with('L')
    }

    /// `\pL` or `\pM`.
    pub(crate) fn is_letter_or_mark(&self, c: char) -> bool {
        let cat = self.category(c);
        cat.starts_with('L') || cat.starts_with('M')
    }

    /// The script uroman assigns the character ("" when none).
    pub(crate) fn script(&self, c: Option<char>) -> &str {
        c.and_then(|c| self.script_of.get(&c))
            .map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_read_as_uroman_reads_them() {
        let line = "::s kn ::t kn ::t-alt n ::use-only-at-start-of-word ::example knowledge";
        assert_eq!(slot_value(line, "s"), Some("kn"));
        assert_eq!(slot_value(line, "t"), Some("kn"));
        assert_eq!(slot_value(line, "t-alt"), Some("n"));
        assert_eq!(slot_value(line, "use-only-at-start-of-word"), Some(""));
        assert_eq!(slot_value(line, "lcode"), None);
        assert_eq!(
            slot_value("::u 00A0 ::r \" \"", "r").map(dequote),
            Some(" ")
        );
        assert_eq!(strip_comment("::s a ::t b  # note"), "::s a ::t b");
        assert_eq!(strip_comment("::s # ::t #"), "::s # ::t #");
    }
}

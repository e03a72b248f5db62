//! One string's romanization lattice, as uroman's `Lattice`: edges over
//! spans of the string (rule romanizations with their context heuristics,
//! Hangul, decompositions, numbers, single-character fallbacks), then the
//! best path from left to right.

use std::collections::{BTreeSet, HashMap};

use super::tables::{RomRule, Tables};
use super::Uroman;

/// What made an edge (uroman's edge `type`), as far as the best path and
/// the context heuristics look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `rom…` and `num…` annotations, and a number's digits once combined.
    Rom,
    /// `rom decomp`.
    Decomp,
    /// `orig`, `Mn`, `Cf`, `Co`, `decimal period`.
    Other,
}

/// A number's value: uroman keeps Python ints and floats apart.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Int(i128),
    Float(f64),
}

impl Value {
    fn int(self) -> Option<i128> {
        match self {
            Value::Int(v) => Some(v),
            Value::Float(_) => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// A numeral edge's properties (uroman's `NumEdge`).
#[derive(Debug, Clone, Default)]
struct Num {
    active: bool,
    value: Option<Value>,
    fraction: Option<(i128, i128)>,
    num_base: Option<i128>,
    is_large_power: bool,
    script: Option<String>,
    kind: Option<String>,
    orig_txt: String,
    value_s: Option<String>,
}

impl Num {
    /// The text uroman's `NumEdge.update` writes: the value, then the
    /// fraction, else the original text.
    fn text(&self) -> String {
        let value_s = match (&self.value_s, self.value) {
            (Some(s), _) => s.clone(),
            (None, None) => String::new(),
            (None, Some(Value::Int(v))) => v.to_string(),
            (None, Some(Value::Float(v))) => py_float(v),
        };
        let fraction_s = self
            .fraction
            .map(|(n, d)| format!("{n}/{d}"))
            .unwrap_or_default();
        let sep = if !value_s.is_empty() && !fraction_s.is_empty() {
            " "
        } else {
            ""
        };
        let txt = format!("{value_s}{sep}{fraction_s}");
        if txt.is_empty() {
            self.orig_txt.clone()
        } else {
            txt
        }
    }
}

/// Python's `str(float)` for the values numbers take.
fn py_float(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

#[derive(Debug, Clone)]
struct Edge {
    start: usize,
    end: usize,
    txt: String,
    kind: Kind,
    num: Option<Num>,
}

/// An edge's place in the lattice's arena.
type EdgeId = usize;

pub(super) struct Lattice<'a> {
    uroman: &'a Uroman,
    t: &'a Tables,
    s: Vec<char>,
    lcode: Option<&'a str>,
    arena: Vec<Edge>,
    edges: HashMap<(usize, usize), Vec<EdgeId>>,
    right: HashMap<usize, BTreeSet<usize>>,
    left: HashMap<usize, BTreeSet<usize>>,
    preceded_by_alpha: HashMap<usize, bool>,
    followed_by_alpha: HashMap<usize, bool>,
    top_cache: HashMap<(usize, usize), String>,
}

fn is_consonant_letter(c: char) -> bool {
    "bcdfghjklmnpqrstvwxyz".contains(c)
}

fn all_in(s: &str, set: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| set.contains(c))
}

impl<'a> Lattice<'a> {
    pub(super) fn new(uroman: &'a Uroman, s: &str, lcode: Option<&'a str>) -> Self {
        Self {
            uroman,
            t: &uroman.tables,
            s: s.chars().collect(),
            lcode,
            arena: Vec::new(),
            edges: HashMap::new(),
            right: HashMap::new(),
            left: HashMap::new(),
            preceded_by_alpha: HashMap::new(),
            followed_by_alpha: HashMap::new(),
            top_cache: HashMap::new(),
        }
    }

    /// The romanization: all edges added, then the best path.
    pub(super) fn romanize(mut self) -> String {
        self.add_romanization();
        self.add_numbers();
        self.add_fall_back_singles();
        let mut out = String::new();
        let mut start = 0;
        while start < self.s.len() {
            match self.best_right_neighbor(start, false) {
                Some(id) => {
                    out.push_str(&self.arena[id].txt);
                    start = self.arena[id].end;
                }
                None => start += 1,
            }
        }
        out
    }

    fn n(&self) -> usize {
        self.s.len()
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn span(&self, start: usize, end: usize) -> String {
        self.s[start..end.min(self.n())].iter().collect()
    }

    fn add_edge(&mut self, edge: Edge) -> EdgeId {
        let id = self.arena.len();
        self.right.entry(edge.start).or_default().insert(edge.end);
        self.left.entry(edge.end).or_default().insert(edge.start);
        self.edges
            .entry((edge.start, edge.end))
            .or_default()
            .push(id);
        self.arena.push(edge);
        id
    }

    fn span_ids(&self, start: usize, end: usize) -> &[EdgeId] {
        self.edges.get(&(start, end)).map_or(&[], Vec::as_slice)
    }

    fn rules(&self, s: &str) -> &'a [RomRule] {
        self.t.rom_rules.get(s).map_or(&[], Vec::as_slice)
    }

    fn is_prefix(&self, s: &str) -> bool {
        self.t.s_prefix.contains(s)
    }

    fn is_at_start_of_word(&mut self, position: usize) -> bool {
        if let Some(&preceded) = self.preceded_by_alpha.get(&position) {
            return !preceded;
        }
        let first_is_braille = self
            .char_at(position)
            .is_some_and(|c| ('\u{2800}'..='\u{28FF}').contains(&c));
        if position > 0 && self.t.is_alpha(self.s[position - 1]) {
            self.preceded_by_alpha.insert(position, true);
            return false;
        }
        let starts: Vec<usize> = self
            .left
            .get(&position)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for start in starts {
            for &id in self.span_ids(start, position) {
                if let Some(last) = self.arena[id].txt.chars().next_back() {
                    if self.t.is_alpha(last) || (first_is_braille && last == '\'') {
                        self.preceded_by_alpha.insert(position, true);
                        return false;
                    }
                }
            }
        }
        self.preceded_by_alpha.insert(position, false);
        true
    }

    fn is_at_end_of_word(&mut self, position: usize) -> bool {
        if let Some(&followed) = self.followed_by_alpha.get(&position) {
            return !followed;
        }
        let mut start = position;
        if start < self.n() && self.t.is_alpha(self.s[start]) {
            self.followed_by_alpha.insert(position, true);
            return false;
        }
        while start + 1 < self.n()
            && self.t.category(self.s[start]) == "Mn"
            && self.t.chr_name(self.s[start]).contains("NUKTA")
        {
            start += 1;
        }
        for end in start + 1..=self.n() {
            let s = self.span(start, end);
            if !self.is_prefix(&s) {
                break;
            }
            for rule in self.rules(&s) {
                if !rule.use_only_at_start_of_word
                    && rule
                        .t
                        .as_deref()
                        .is_some_and(|t| t.chars().any(|c| self.t.category(c).starts_with('L')))
                {
                    self.followed_by_alpha.insert(position, true);
                    return false;
                }
            }
        }
        self.followed_by_alpha.insert(position, false);
        true
    }

    /// Thai: whether `position` ends a syllable.
    fn is_at_end_of_syllable(&mut self, position: usize) -> bool {
        let prev_char = position.checked_sub(2).and_then(|i| self.char_at(i));
        let mut next_char = self.char_at(position);
        let adj = if next_char.is_some_and(|c| self.t.tone_marks.contains(&c)) {
            next_char = self.char_at(position + 1);
            position + 1
        } else {
            position
        };
        let next_char2 = self.char_at(adj + 1);
        let Some(prev_char) = prev_char else {
            return false;
        };
        if !self.t.is_letter_or_mark(prev_char) {
            return false;
        }
        let pre_post = "written-pre-consonant-spoken-post-consonant";
        if self
            .t
            .syllable_info
            .get(&prev_char)
            .is_some_and(|i| i == pre_post)
        {
            return false;
        }
        if next_char
            .and_then(|c| self.t.syllable_info.get(&c))
            .is_some_and(|i| i == pre_post)
        {
            return true;
        }
        let Some(next_char) = next_char.filter(|_| adj < self.n()) else {
            return true;
        };
        if !self.t.is_letter_or_mark(next_char) {
            return true;
        }
        if position > 0 {
            if let Some(id) = self.best_left_neighbor(position - 1, false) {
                if self.arena[id]
                    .txt
                    .chars()
                    .next_back()
                    .is_some_and(|c| "bcdfghjklmnpqrstvxz".contains(c))
                {
                    return false;
                }
            }
        }
        let next_rom = self
            .top_candidate(adj, adj + 2, true)
            .or_else(|| self.top_candidate(adj, adj + 1, true))
            .unwrap_or_else(|| "?".into());
        if !next_rom
            .to_lowercase()
            .starts_with(|c: char| "aeiou".contains(c))
        {
            return true;
        }
        if next_char == '\u{0E2D}' && next_char2.is_some() {
            let rom2 = self
                .top_candidate(adj + 1, adj + 2, true)
                .unwrap_or_else(|| "?".into());
            if rom2
                .to_lowercase()
                .starts_with(|c: char| "aeiou".contains(c))
            {
                return true;
            }
        }
        false
    }

    fn cand_is_valid(&mut self, rule: &RomRule, start: usize, end: usize) -> bool {
        if rule.t.is_none() {
            return false;
        }
        if rule.dont_use_at_start_of_word && self.is_at_start_of_word(start) {
            return false;
        }
        if rule.use_only_at_start_of_word && !self.is_at_start_of_word(start) {
            return false;
        }
        if rule.dont_use_at_end_of_word && self.is_at_end_of_word(end) {
            return false;
        }
        if rule.use_only_at_end_of_word && !self.is_at_end_of_word(end) {
            return false;
        }
        if rule.use_only_for_whole_word
            && !(self.is_at_start_of_word(start) && self.is_at_end_of_word(end))
        {
            return false;
        }
        if !rule.lcodes.is_empty()
            && !self
                .lcode
                .is_some_and(|l| rule.lcodes.iter().any(|c| c == l))
        {
            return false;
        }
        true
    }

    /// uroman's `simple_top_romanization_candidate_for_span`: the valid
    /// rule with the most restrictions (the first on a tie).
    fn top_candidate(&mut self, start: usize, end: usize, simple: bool) -> Option<String> {
        if end > self.n() {
            return None;
        }
        if let Some(cached) = self.top_cache.get(&(start, end)) {
            return Some(cached.clone());
        }
        let s = self.span(start, end);
        let mut best: Option<&RomRule> = None;
        for rule in self.rules(&s) {
            if self.cand_is_valid(rule, start, end) && best.is_none_or(|b| rule.n_restr > b.n_restr)
            {
                best = Some(rule);
            }
        }
        let mut cand = best.and_then(|r| r.t.clone());
        if simple {
            return cand;
        }
        if let Some(at_end) = best.and_then(|r| r.t_at_end_of_syllable.clone()) {
            if self.is_at_end_of_syllable(end) {
                cand = Some(at_end);
            }
        }
        if let Some(c) = &cand {
            self.top_cache.insert((start, end), c.clone());
        }
        cand
    }

    fn first_rule_t(&self, c: Option<char>) -> Option<String> {
        let c = c?;
        self.rules(&c.to_string())
            .first()
            .and_then(|r| r.t.clone())
            .filter(|t| !t.is_empty())
    }

    /// Python's truth test of a candidate: `None` and `""` are false.
    fn has_candidate(&mut self, start: usize, end: usize) -> bool {
        self.top_candidate(start, end, false)
            .is_some_and(|c| !c.is_empty())
    }

    fn add_romanization(&mut self) {
        for start in 0..self.n() {
            for end in start + 1..=self.n() {
                let s = self.span(start, end);
                if !self.is_prefix(&s) {
                    break;
                }
                let Some(mut rom) = self.top_candidate(start, end, false) else {
                    continue;
                };
                let mut tail = false;
                for tail_start in ["+ng", "+m", "+n", "+h", "+r"] {
                    if rom.starts_with(tail_start) {
                        rom.remove(0);
                        tail = true;
                        break;
                    }
                }
                let rom = self.add_default_abugida_vowel(rom, start, end, tail);
                if let Some((rom, start2, end2, _)) =
                    self.expand_with_special_chars(rom, start, end)
                {
                    self.add_edge(Edge {
                        start: start2,
                        end: end2,
                        txt: rom,
                        kind: Kind::Rom,
                        num: None,
                    });
                }
            }
            let c = self.s[start];
            if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                let rom = hangul(c);
                if !rom.is_empty() {
                    self.add_edge(Edge {
                        start,
                        end: start + 1,
                        txt: rom,
                        kind: Kind::Rom,
                        num: None,
                    });
                }
            }
            if let Some(rom) = self.decomp_rom(start) {
                self.add_edge(Edge {
                    start,
                    end: start + 1,
                    txt: rom,
                    kind: Kind::Decomp,
                    num: None,
                });
            }
        }
    }

    /// uroman's `add_default_abugida_vowel` (South and South-East Asian
    /// scripts, Ethiopic, ...).
    fn add_default_abugida_vowel(
        &mut self,
        rom: String,
        start: usize,
        end: usize,
        tail: bool,
    ) -> String {
        let first = self.s[start];
        let last = self.s[end - 1];
        let script_name = self.t.script(Some(first)).to_string();
        let Some(vowels) = self
            .t
            .abugida_vowels
            .get(&script_name.to_lowercase())
            .filter(|v| !v.is_empty())
        else {
            return rom;
        };
        let vowels = vowels.clone();
        let (base, base_plus_vowel, rom) =
            abugida_parts(&rom, &vowels, start + 1 == end, &script_name);
        let Some(base) = base else {
            return rom;
        };
        let base_plus_vowel = base_plus_vowel.unwrap_or_default();
        if tail {
            return rom;
        }
        let prev = start.checked_sub(1).and_then(|i| self.char_at(i));
        let next = self.char_at(end);
        let next2 = self.char_at(end + 1);
        if script_name == "Tibetan" {
            return base; // the Tibetan vowel heuristics are not ported
        }
        if next == Some('យ')
            && (all_in(&base, "bcdfghklmnpqrstvwz") && "bcdfghklmnpqrstvwz".contains(base.as_str())
                || base == "ng")
        {
            return base;
        }
        let is = |set: &std::collections::HashSet<char>, c: Option<char>| {
            c.is_some_and(|c| set.contains(&c))
        };
        if is(&self.t.vowel_signs, next) || is(&self.t.medial_consonant_signs, next) {
            return base;
        }
        if next.is_some_and(|c| self.t.chr_name(c).contains("SUBJOINED LETTER")) {
            return base;
        }
        let next_is_mn = next.is_some_and(|c| self.t.category(c) == "Mn");
        if next_is_mn && is(&self.t.vowel_signs, next2) {
            return base;
        }
        if is(&self.t.viramas, next) || (next_is_mn && is(&self.t.viramas, next2)) {
            return base;
        }
        if is(&self.t.viramas, prev) {
            return base_plus_vowel;
        }
        if self.is_at_start_of_word(start) && !has_r_vowel(&rom) {
            return base_plus_vowel;
        }
        if self.is_at_end_of_word(end) {
            let keep_schwa_dropped = (script_name == "Devanagari" && self.lcode != Some("san"))
                || matches!(self.lcode, Some("asm" | "ben" | "guj" | "kas" | "pan"));
            return if keep_schwa_dropped {
                rom
            } else {
                base_plus_vowel
            };
        }
        if self.t.script(prev) != script_name {
            return base_plus_vowel;
        }
        if self.t.chr_name(last).contains("VOCALIC") {
            return base;
        }
        if self.t.script(next) == script_name {
            return base_plus_vowel;
        }
        rom
    }

    /// uroman's `expand_rom_with_special_chars`: context that extends or
    /// changes an edge (Japanese doubled consonants, small y, long vowels;
    /// Thai vowels written before their consonant; viramas; ...). `None`
    /// stands for an empty romanization left as it is.
    fn expand_with_special_chars(
        &mut self,
        rom: String,
        start: usize,
        end: usize,
    ) -> Option<(String, usize, usize, bool)> {
        let mut rom = rom;
        let (mut start, mut end) = (start, end);
        let orig_start = start;
        if rom.is_empty() {
            return Some((rom, start, end, false));
        }
        let mut prev = start.checked_sub(1).and_then(|i| self.char_at(i));
        let first = self.s[start];
        let mut last = self.s[end - 1];
        let mut next = self.char_at(end);
        if prev == Some('\u{2820}') && rom.starts_with(|c: char| c.is_ascii_lowercase()) {
            let mut chars = rom.chars();
            let head: String = chars
                .next()
                .map(|c| c.to_uppercase().collect())
                .unwrap_or_default();
            return Some((head + chars.as_str(), start - 1, end, true));
        }
        if start + 1 == end && py_isupper(&rom) && next.is_some_and(char::is_lowercase) {
            rom = py_capitalize(&rom);
        }
        if let Some(p) = prev.filter(|p| "っッ\u{0A71}".contains(*p)) {
            if let Some(doubled) = double_consonant(&rom) {
                rom = if "っッ".contains(p) {
                    doubled.replace("ch", "t") + &rom
                } else {
                    doubled.replace("ch", "c") + &rom
                };
                start -= 1;
                prev = start.checked_sub(1).and_then(|i| self.char_at(i));
            }
        }
        let first = if start == orig_start {
            first
        } else {
            self.s[start]
        };
        if self.t.script(Some(first)) == "Thai" {
            let pre_post = "written-pre-consonant-spoken-post-consonant";
            let prev_is_pre = prev
                .and_then(|p| self.t.syllable_info.get(&p))
                .is_some_and(|i| i == pre_post);
            if start + 1 == end
                && all_in(&rom, "bcdfghjklmnpqrstvwxyz")
                && prev_is_pre
                && start >= 1
            {
                for suffix_len in [3, 2, 1] {
                    if end + suffix_len <= self.n() {
                        let pattern = format!(
                            "{}–{}",
                            self.span(start - 1, start),
                            self.span(end, end + suffix_len)
                        );
                        if let Some(vowel) = self.rules(&pattern).first().and_then(|r| r.t.clone())
                        {
                            return Some((rom + &vowel, start - 1, end + suffix_len, true));
                        }
                    }
                }
            }
            if self.t.script(prev) == "Thai" && prev_is_pre && rom.starts_with(is_consonant_letter)
            {
                if let Some(vowel) = self.first_rule_t(prev) {
                    return Some((rom + &vowel, start - 1, end, true));
                }
            }
            if first == '\u{0E2D}' && end - start == 1 {
                let prev_script = self.t.script(prev).to_string();
                let next_script = self.t.script(next).to_string();
                let prev_rom = self.rom_backwards(start, 1);
                let next_rom = self.first_rule_t(next).unwrap_or_default();
                let consonants = "bcdfghjklmnpqrstvwxz";
                if !(prev_script == "Thai"
                    && next_script == "Thai"
                    && all_in(&prev_rom, consonants)
                    && all_in(&next_rom, consonants))
                {
                    return Some((String::new(), start, end, true));
                }
            }
        }
        if next == Some('\u{0300}')
            && self.t.script(Some(last)) == "Coptic"
            && !self.has_candidate(orig_start, end + 1)
        {
            rom = format!("e{rom}");
            end += 1;
            last = self.s[end - 1];
            next = self.char_at(end);
        }
        if let Some(n) = next.filter(|n| "ゃゅょャュョ".contains(*n)) {
            if self.t.script(Some(last)) == self.t.script(Some(n)) && ends_consonant_i(&rom) {
                if let Some(y_rom) = self.first_rule_t(Some(n)) {
                    if !self.has_candidate(orig_start, end + 1)
                        && !self.has_candidate(start, end + 1)
                    {
                        rom.pop();
                        rom.push_str(&y_rom);
                        end += 1;
                        last = self.s[end - 1];
                        next = self.char_at(end);
                    }
                }
            }
        }
        if next == Some('ー') && matches!(self.t.script(Some(last)), "Hiragana" | "Katakana") {
            if let Some(v) = rom.chars().next_back().filter(|c| "aeiou".contains(*c)) {
                rom.push(v);
                return Some((rom, start, end + 1, true));
            }
        }
        if next.is_some_and(|c| self.t.viramas.contains(&c)) {
            return Some((rom, start, end + 1, true));
        }
        if rom.starts_with(' ') && (start == 0 || prev == Some(' ')) {
            rom.remove(0);
        }
        if rom.ends_with(' ') && next == Some(' ') {
            rom.pop();
        }
        Some((rom, start, end, false))
    }

    /// The romanization of at least `min_chars` characters left of `end`,
    /// along the best edges (uroman's `find_rom_edge_path_backwards`).
    fn rom_backwards(&mut self, end: usize, min_chars: usize) -> String {
        let mut rom = String::new();
        let mut end2 = end;
        while end2 > 0 {
            let old = end2;
            if let Some(id) = self.best_left_neighbor(end2, false) {
                rom = self.arena[id].txt.clone() + &rom;
                end2 = self.arena[id].start;
            }
            if rom.chars().count() >= min_chars {
                break;
            }
            if old <= end2 {
                end2 -= 1;
            }
        }
        rom
    }

    /// uroman's `decomp_rom`: a character with a compatibility
    /// decomposition (ligatures, fractions, presentation forms) read as
    /// what it decomposes to.
    fn decomp_rom(&mut self, position: usize) -> Option<String> {
        let c = self.s[position];
        let decomposition = self.t.decomposition(c);
        if decomposition.is_empty() {
            return None;
        }
        let mut tags = Vec::new();
        let mut other = false;
        let mut decomposed = String::new();
        for part in decomposition.split_whitespace() {
            if part.starts_with('<') {
                tags.push(part);
            } else {
                match u32::from_str_radix(part, 16).ok().and_then(char::from_u32) {
                    Some(d) => decomposed.push(d),
                    None => other = true,
                }
            }
        }
        let mut rom = None;
        if tags
            .first()
            .is_some_and(|t| !matches!(*t, "<super>" | "<sub>" | "<noBreak>" | "<compat>"))
            && !other
            && !decomposed.is_empty()
        {
            rom = Some(self.uroman.romanize_whole(&decomposed, self.lcode));
        }
        let mut rom = rom.filter(|r| !r.is_empty())?;
        if self.t.is_numeric(c) {
            rom = rom.replace('⁄', "/");
            if position >= 1 && self.t.is_numeric(self.s[position - 1]) {
                rom = format!(" {rom}");
            }
            if position + 1 < self.n() && self.t.is_numeric(self.s[position + 1]) {
                rom.push(' ');
            }
        }
        Some(rom)
    }

    fn num(&self, id: EdgeId) -> Option<&Num> {
        self.arena[id].num.as_ref()
    }

    fn active_num(&self, id: Option<EdgeId>) -> Option<&Num> {
        id.and_then(|id| self.num(id)).filter(|n| n.active)
    }

    /// uroman's `edge_is_digit`.
    fn is_digit(&self, id: Option<EdgeId>) -> bool {
        let Some(id) = id else { return false };
        let edge = &self.arena[id];
        edge.end - edge.start == 1
            && edge.num.as_ref().is_some_and(|n| {
                n.kind.as_deref() == Some("digit")
                    && n.value
                        .and_then(Value::int)
                        .is_some_and(|v| (0..=9).contains(&v))
            })
    }

    /// A new active number edge over `start..end` (uroman's multi-character
    /// `NumEdge` followed by `update`).
    fn add_number(&mut self, start: usize, end: usize, num: Num) -> EdgeId {
        let txt = num.text();
        self.add_edge(Edge {
            start,
            end,
            txt,
            kind: Kind::Other,
            num: Some(Num {
                active: true,
                ..num
            }),
        })
    }

    /// uroman's `update_edge_list`: the old edges are deactivated and the
    /// new one takes the first one's place.
    fn replace_in(&mut self, list: &[EdgeId], new: EdgeId, old: &[EdgeId]) -> Vec<EdgeId> {
        let mut out = Vec::with_capacity(list.len() + 1);
        let mut added = false;
        for &id in list {
            if old.contains(&id) {
                if let Some(n) = self.arena[id].num.as_mut() {
                    n.active = false;
                }
                if !added {
                    out.push(new);
                    added = true;
                }
            } else {
                out.push(id);
            }
        }
        if !added {
            out.push(new);
        }
        out
    }

    /// uroman's `add_numbers`: numerals as numbers, digit runs (`D1`),
    /// numeral words multiplied and added (`G1`–`G4`: 三百二十一 → 321),
    /// fractions and percentages (`G5`), signs (`G6`), and spacing between
    /// adjacent numbers (`F1`).
    fn add_numbers(&mut self) {
        let mut nums: Vec<EdgeId> = Vec::new();
        for start in 0..self.n() {
            let c = self.s[start].to_string();
            let Some(prop) = self.t.num_props.get(&c) else {
                continue;
            };
            let num = Num {
                active: true,
                value: prop.value.map(Value::Int),
                fraction: prop.fraction,
                num_base: prop.base,
                is_large_power: prop.is_large_power,
                script: prop.script.clone(),
                kind: prop.kind.clone(),
                orig_txt: c,
                value_s: None,
            };
            let txt = num.text();
            nums.push(self.add_edge(Edge {
                start,
                end: start + 1,
                txt,
                kind: Kind::Other,
                num: Some(num),
            }));
        }
        // D1: runs of digits, with at most one decimal point.
        for id in nums.clone() {
            if !(self.is_digit(Some(id)) && self.num(id).is_some_and(|n| n.active)) {
                continue;
            }
            let mut value_s = self
                .num(id)
                .and_then(|n| n.value)
                .map(|v| v.as_f64() as i128)
                .unwrap_or(0)
                .to_string();
            let mut subs = vec![id];
            let mut prev = id;
            let mut decimal = false;
            loop {
                let prev_end = self.arena[prev].end;
                let right = self.best_right_neighbor(prev_end, false);
                if self.is_digit(right) {
                    let r = right.unwrap_or(prev);
                    value_s.push_str(
                        &self
                            .num(r)
                            .and_then(|n| n.value)
                            .and_then(Value::int)
                            .unwrap_or(0)
                            .to_string(),
                    );
                    subs.push(r);
                    prev = r;
                } else if !decimal
                    && self.char_at(prev_end) == Some('.')
                    && self.is_digit(self.best_right_neighbor(prev_end + 1, false))
                {
                    let right2 = self
                        .best_right_neighbor(prev_end + 1, false)
                        .unwrap_or(prev);
                    let point = match right {
                        Some(r) => r,
                        None => self.add_edge(Edge {
                            start: prev_end,
                            end: prev_end + 1,
                            txt: ".".into(),
                            kind: Kind::Other,
                            num: None,
                        }),
                    };
                    subs.push(point);
                    subs.push(right2);
                    value_s.push('.');
                    value_s.push_str(
                        &self
                            .num(right2)
                            .and_then(|n| n.value)
                            .and_then(Value::int)
                            .unwrap_or(0)
                            .to_string(),
                    );
                    decimal = true;
                    prev = right2;
                } else {
                    break;
                }
            }
            if subs.len() >= 2 {
                let value = if decimal {
                    value_s.parse::<f64>().ok().map(Value::Float)
                } else {
                    value_s.parse::<i128>().ok().map(Value::Int)
                };
                let last = *subs.last().unwrap_or(&id);
                let num = Num {
                    value,
                    value_s: Some(value_s.clone()),
                    num_base: Some(1),
                    kind: Some("D1".into()),
                    script: self.num(last).and_then(|n| n.script.clone()),
                    orig_txt: self.span(self.arena[id].start, self.arena[last].end),
                    ..Num::default()
                };
                let new = self.add_number(self.arena[id].start, self.arena[last].end, num);
                nums = self.replace_in(&nums, new, &subs);
            }
        }
        // G1: a single digit times a base (2*100, 3*10).
        for id in nums.clone() {
            let Some(n) = self
                .num(id)
                .filter(|n| n.active && n.num_base == Some(1))
                .cloned()
            else {
                continue;
            };
            let Some(v) = n.value.and_then(Value::int).filter(|v| *v >= 1) else {
                continue;
            };
            let right = self.best_right_neighbor(self.arena[id].end, false);
            let Some(r) = self.active_num(right).cloned() else {
                continue;
            };
            let (Some(rv), Some(rb)) = (r.value.and_then(Value::int), r.num_base) else {
                continue;
            };
            if rb <= 1 || r.is_large_power {
                continue;
            }
            let Some(value) = v.checked_mul(rv) else {
                continue;
            };
            let right = right.unwrap_or(id);
            let num = Num {
                value: Some(Value::Int(value)),
                num_base: Some(rb),
                kind: Some("G1".into()),
                orig_txt: n.orig_txt.clone() + &r.orig_txt,
                script: r.script.clone(),
                ..Num::default()
            };
            let new = self.add_number(self.arena[id].start, self.arena[right].end, num);
            nums = self.replace_in(&nums, new, &[id, right]);
        }
        // G2: sums within a block (200+30+4).
        for id in nums.clone() {
            let Some(n) = self
                .num(id)
                .filter(|n| n.active && !n.is_large_power)
                .cloned()
            else {
                continue;
            };
            if n.value.and_then(Value::int).is_none() {
                continue;
            }
            let mut subs = vec![id];
            let mut prev = id;
            let mut prev_non_gap = id;
            loop {
                let right = self.best_right_neighbor(self.arena[prev].end, false);
                let Some(r) = self.active_num(right).cloned() else {
                    break;
                };
                let Some(rv) = r.value.and_then(Value::int) else {
                    break;
                };
                if r.is_large_power {
                    break;
                }
                let gap = self.is_gap_null(prev_non_gap);
                let p = self.num(prev_non_gap).cloned().unwrap_or_default();
                let fits = match (p.num_base, r.num_base) {
                    (Some(pb), Some(rb)) => pb > rv && pb > rb,
                    _ => false,
                };
                if !(gap || fits) {
                    break;
                }
                let right = right.unwrap_or(id);
                subs.push(right);
                prev = right;
                if !self.is_gap_null(right) {
                    prev_non_gap = right;
                }
            }
            if subs.len() >= 2 {
                nums = self.add_sum(&nums, &subs, "G2");
            }
        }
        // G3: a block times a large power (234*1000).
        for id in nums.clone() {
            let Some(n) = self
                .num(id)
                .filter(|n| n.active && !n.is_large_power)
                .cloned()
            else {
                continue;
            };
            let Some(v) = n.value else { continue };
            let right = self.best_right_neighbor(self.arena[id].end, false);
            let Some(r) = self.active_num(right).cloned() else {
                continue;
            };
            let (Some(rv), Some(rb)) = (r.value.and_then(Value::int), r.num_base) else {
                continue;
            };
            if rb <= 1 || !r.is_large_power {
                continue;
            }
            let value = match v {
                Value::Int(a) => match a.checked_mul(rv) {
                    Some(p) => Value::Int(p),
                    None => continue,
                },
                Value::Float(a) => {
                    let p = (a * rv as f64 * 1e5).round() / 1e5;
                    if p == p.trunc() && p.abs() < 1e30 {
                        Value::Int(p as i128)
                    } else {
                        Value::Float(p)
                    }
                }
            };
            let right = right.unwrap_or(id);
            let num = Num {
                value: Some(value),
                num_base: Some(rb),
                kind: Some("G3".into()),
                orig_txt: n.orig_txt.clone() + &r.orig_txt,
                script: r.script.clone(),
                ..Num::default()
            };
            let new = self.add_number(self.arena[id].start, self.arena[right].end, num);
            nums = self.replace_in(&nums, new, &[id, right]);
        }
        // G4: sums of blocks (234000+567).
        for id in nums.clone() {
            if self
                .num(id)
                .filter(|n| n.active)
                .and_then(|n| n.value)
                .and_then(Value::int)
                .is_none()
            {
                continue;
            }
            let mut subs = vec![id];
            loop {
                let prev = *subs.last().unwrap_or(&id);
                let right = self.best_right_neighbor(self.arena[prev].end, false);
                let Some(r) = self.active_num(right).cloned() else {
                    break;
                };
                let Some(rv) = r.value.and_then(Value::int) else {
                    break;
                };
                let p = self.num(prev).cloned().unwrap_or_default();
                let fits = match (p.num_base, r.num_base) {
                    (Some(pb), Some(rb)) => pb > rv && pb > rb,
                    _ => false,
                };
                if !fits {
                    break;
                }
                let right = right.unwrap_or(id);
                let pb = p.num_base.unwrap_or(0);
                let tens = pb.to_string();
                if p.script.as_deref() == Some("CJK")
                    && pb >= 1000
                    && !p.kind.as_deref().unwrap_or("").contains("tag")
                    && tens.starts_with('1')
                    && tens[1..].chars().all(|c| c == '0')
                    && tens.len() > 1
                    && (1..=9).contains(&rv)
                    && self.arena[right].end == self.arena[right].start + 1
                {
                    let base = pb / 10;
                    if let Some(rn) = self.arena[right].num.as_mut() {
                        rn.value = Some(Value::Int(base * rv));
                        rn.num_base = Some(base);
                        rn.kind = Some("G4tag".into());
                    }
                }
                subs.push(right);
            }
            if subs.len() >= 2 {
                nums = self.add_sum(&nums, &subs, "G4");
            }
        }
        // G5: fractions (分之) and percentages (百分之).
        for id in nums.clone() {
            let Some(v) = self.num(id).and_then(|n| n.value).and_then(Value::int) else {
                continue;
            };
            for connector in self.t.fraction_connectors.clone() {
                let len = connector.chars().count();
                let end = self.arena[id].end;
                if self.span(end, end + len) != connector {
                    continue;
                }
                let Some(right) = self.best_right_neighbor(end + len, false) else {
                    continue;
                };
                let Some(rv) = self.num(right).and_then(|n| n.value) else {
                    continue;
                };
                let start = self.arena[id].start;
                let right_end = self.arena[right].end;
                if v == 100 {
                    let txt = match rv {
                        Value::Int(x) => format!("{x}%"),
                        Value::Float(x) => format!("{}%", py_float(x)),
                    };
                    let new = self.add_edge(Edge {
                        start,
                        end: right_end,
                        txt,
                        kind: Kind::Other,
                        num: None,
                    });
                    nums = self.replace_in(&nums, new, &[id, right]);
                } else if let (Value::Int(x), true) = (rv, v > 0) {
                    let new = self.add_edge(Edge {
                        start,
                        end: right_end,
                        txt: format!("{x}/{v}"),
                        kind: Kind::Other,
                        num: Some(Num {
                            active: true,
                            fraction: Some((x, v)),
                            kind: Some("fraction".into()),
                            orig_txt: self.span(start, right_end),
                            ..Num::default()
                        }),
                    });
                    nums = self.replace_in(&nums, new, &[id, right]);
                }
            }
        }
        // G6: signs before a number.
        for id in nums.clone() {
            let (start, end) = (self.arena[id].start, self.arena[id].end);
            for (signs, mark) in [
                (self.t.minus_signs.clone(), '-'),
                (self.t.plus_signs.clone(), '+'),
            ] {
                for sign in signs {
                    let len = sign.chars().count();
                    if len <= start && self.span(start - len, start) == sign {
                        let txt = format!("{mark}{}", self.arena[id].txt);
                        self.add_edge(Edge {
                            start: start - len,
                            end,
                            txt,
                            kind: Kind::Other,
                            num: None,
                        });
                    }
                }
            }
        }
        // F1: a number right after another one is set off (23½ → 23 1/2).
        for &id in &nums {
            let Some(fraction) = self.num(id).map(|n| n.fraction.is_some()) else {
                continue;
            };
            if !self.arena[id].txt.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let left = self.best_left_neighbor(self.arena[id].start, false);
            if left.is_some_and(|l| self.arena[l].txt.ends_with(|c: char| c.is_ascii_digit())) {
                let sep = if fraction { " " } else { "·" };
                self.arena[id].txt.insert_str(0, sep);
            }
        }
        // Exceptions: numerals rarely meant as numbers.
        for &id in &nums {
            let single = self.arena[id].end == self.arena[id].start + 1;
            if let Some(n) = self.arena[id].num.as_mut() {
                let big = n.value.is_some_and(|v| v.as_f64() > 1000.0) && single;
                let odd = "兩參参伍陆陸什".contains(n.orig_txt.as_str()) || n.orig_txt == "京兆";
                if n.active && n.value.is_some() && (big || odd) {
                    n.active = false;
                }
            }
        }
        // Digits uroman's tables lack, by their Unicode value.
        for start in 0..self.n() {
            if self
                .best_in_span(start, start + 1, false)
                .is_some_and(|id| self.arena[id].num.is_some())
            {
                continue;
            }
            let c = self.s[start];
            if let Some(v) = self.t.numeric(c) {
                if v == v.trunc()
                    && (0.0..=9.0).contains(&v)
                    && self.t.chr_name(c).contains("DIGIT")
                {
                    self.add_edge(Edge {
                        start,
                        end: start + 1,
                        txt: (v as i64).to_string(),
                        kind: Kind::Rom,
                        num: None,
                    });
                }
            }
        }
    }

    /// A run of number edges summed into one (uroman's `G2` and `G4`),
    /// with the last one's base and script; returns the updated list.
    fn add_sum(&mut self, nums: &[EdgeId], subs: &[EdgeId], kind: &str) -> Vec<EdgeId> {
        let value: i128 = subs
            .iter()
            .filter_map(|&e| self.num(e).and_then(|n| n.value).and_then(Value::int))
            .sum();
        let (first, last) = (subs[0], subs[subs.len() - 1]);
        let num = Num {
            value: Some(Value::Int(value)),
            num_base: self.num(last).and_then(|n| n.num_base),
            kind: Some(kind.into()),
            orig_txt: subs
                .iter()
                .filter_map(|&e| self.num(e).map(|n| n.orig_txt.clone()))
                .collect(),
            script: self.num(last).and_then(|n| n.script.clone()),
            ..Num::default()
        };
        let new = self.add_number(self.arena[first].start, self.arena[last].end, num);
        self.replace_in(nums, new, subs)
    }

    /// uroman's `is_gap_null_edge`: 零 and 〇 inside a number.
    fn is_gap_null(&self, id: EdgeId) -> bool {
        self.num(id)
            .is_some_and(|n| n.orig_txt == "零" || n.orig_txt == "〇")
    }

    fn add_fall_back_singles(&mut self) {
        for start in 0..self.n() {
            let end = start + 1;
            if self.edges.get(&(start, end)).is_some_and(|e| !e.is_empty()) {
                continue;
            }
            let c = self.s[start];
            let cat = self.t.category(c).to_string();
            let (rom, kind) = if cat == "Mn" || cat == "Cf" || cat == "Co" {
                (String::new(), Kind::Other)
            } else if c == ' ' {
                (c.to_string(), Kind::Other)
            } else if let Some(mut rom) = self.top_candidate(start, end, false) {
                for tail in ["+ng", "+m", "+n", "+h", "+r"] {
                    if rom.starts_with(tail) {
                        rom.remove(0);
                        break;
                    }
                }
                (rom, Kind::Rom)
            } else {
                (c.to_string(), Kind::Other)
            };
            self.add_edge(Edge {
                start,
                end,
                txt: rom,
                kind,
                num: None,
            });
        }
    }

    /// uroman's `best_edge_in_span`: an active number, else the first
    /// romanization, else a decomposition, else anything.
    fn best_in_span(&self, start: usize, end: usize, skip_num: bool) -> Option<EdgeId> {
        let (mut rom, mut decomp, mut other) = (None, None, None);
        for &id in self.span_ids(start, end) {
            let edge = &self.arena[id];
            if let Some(num) = &edge.num {
                if skip_num {
                    continue;
                }
                if num.active {
                    return Some(id);
                }
            }
            match edge.kind {
                Kind::Decomp => {
                    decomp.get_or_insert(id);
                }
                Kind::Rom => {
                    rom.get_or_insert(id);
                }
                Kind::Other => {
                    other.get_or_insert(id);
                }
            }
        }
        rom.or(decomp).or(other)
    }

    fn best_right_neighbor(&self, start: usize, skip_num: bool) -> Option<EdgeId> {
        let ends = self.right.get(&start)?;
        ends.iter()
            .rev()
            .find_map(|&end| self.best_in_span(start, end, skip_num))
    }

    fn best_left_neighbor(&self, end: usize, skip_num: bool) -> Option<EdgeId> {
        let starts = self.left.get(&end)?;
        starts
            .iter()
            .find_map(|&start| self.best_in_span(start, end, skip_num))
    }
}

/// The Hangul syllable's romanization, from its jamo.
fn hangul(c: char) -> String {
    const LEADS: [&str; 19] = [
        "g", "gg", "n", "d", "dd", "r", "m", "b", "bb", "s", "ss", "", "j", "jj", "c", "k", "t",
        "p", "h",
    ];
    const VOWELS: [&str; 21] = [
        "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wai", "oe", "yo", "u", "weo",
        "we", "wi", "yu", "eu", "yi", "i",
    ];
    const TAILS: [&str; 28] = [
        "", "g", "gg", "gs", "n", "nj", "nh", "d", "l", "lg", "lm", "lb", "ls", "lt", "lp", "lh",
        "m", "b", "bs", "s", "ss", "ng", "j", "c", "k", "t", "p", "h",
    ];
    let code = c as u32 - 0xAC00;
    let lead = (code / (28 * 21)) as usize;
    let vowel = ((code / 28) % 21) as usize;
    let tail = (code % 28) as usize;
    format!("{}{}{}", LEADS[lead], VOWELS[vowel], TAILS[tail])
}

/// The abugida cache's computation: the consonant base of a romanization,
/// the base with the default vowel, and the romanization (a trailing `-`
/// dropped from a one-letter consonant).
fn abugida_parts(
    rom: &str,
    vowels: &[String],
    single: bool,
    script: &str,
) -> (Option<String>, Option<String>, String) {
    let mut rom = rom.to_string();
    let core = rom.strip_suffix('-').unwrap_or(&rom).to_string();
    // `([cfghkmnqrstxy]?y)(a+|o+...)-?$`
    let y_match = (|| {
        let mut chars = core.chars();
        let (first, second) = (chars.next(), chars.next());
        // Both are ASCII when they match, so their byte lengths are 1.
        let pre_len = if first.is_some_and(|c| "cfghkmnqrstxy".contains(c)) && second == Some('y') {
            2
        } else if first == Some('y') {
            1
        } else {
            return None;
        };
        let (pre, rest) = core.split_at(pre_len);
        vowels
            .iter()
            .find(|v| {
                !rest.is_empty()
                    && !v.is_empty()
                    && rest.len() % v.len() == 0
                    && rest == v.repeat(rest.len() / v.len())
            })
            .map(|_| (pre.to_string(), format!("{pre}{rest}")))
    })();
    let (base, base_plus_vowel) = if let Some((b, bv)) = y_match {
        (b, bv)
    } else if let Some((b, v)) = vowels.iter().find_map(|v| {
        core.strip_suffix(v.as_str())
            .filter(|b| all_in(b, "bcdfghjklmnpqrstvwxyz"))
            .map(|b| (b.to_string(), v.clone()))
    }) {
        if rom.ends_with('-') && single && rom.starts_with(|c: char| c.is_alphabetic()) {
            rom.pop();
        }
        (b.clone(), format!("{b}{v}"))
    } else {
        (rom.clone(), format!("{rom}{}", vowels[0]))
    };
    if !(all_in(&base, "bcdfghjklmnpqrstvwxyz") || (script == "Tibetan" && base == "'")) {
        return (None, None, rom);
    }
    (Some(base), Some(base_plus_vowel), rom)
}

/// `r[aeiou]` anywhere in the romanization.
fn has_r_vowel(rom: &str) -> bool {
    rom.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'r' && b"aeiou".contains(&w[1]))
}

/// `(ch|[bcdfghjklmnpqrstwz])` at the start.
fn double_consonant(rom: &str) -> Option<String> {
    if rom.starts_with("ch") {
        return Some("ch".into());
    }
    rom.chars()
        .next()
        .filter(|c| "bcdfghjklmnpqrstwz".contains(*c))
        .map(String::from)
}

/// `[bcdfghjklmnpqrstvwxyz]i$`.
fn ends_consonant_i(rom: &str) -> bool {
    let mut chars = rom.chars().rev();
    chars.next() == Some('i') && chars.next().is_some_and(is_consonant_letter)
}

/// Python's `str.isupper`: a cased character, and no lower-case one.
fn py_isupper(s: &str) -> bool {
    s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase)
}

/// Python's `str.capitalize`.
fn py_capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

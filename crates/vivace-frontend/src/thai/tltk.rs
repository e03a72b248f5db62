//! TLTK 1.10's `th2ipa`: Thai letters to IPA syllables with tone digits,
//! ported from its `nlp.py` step by step so that Piper's Thai voices get the
//! same phonemes.
//!
//! - `preprocess` marks segment breaks after `ๆ`;
//! - `sylparse` matches every syllable pattern at every position, gives
//!   each match its pronunciations (letters substituted for the pattern's
//!   codes, the tone from the consonant class, the vowel length and the tone
//!   mark), and chooses the syllable sequence with the best trigram
//!   probability (Witten-Bell, in logs);
//! - `wordparse` groups syllables into words by collocation strength
//!   (mutual information) and `SelectPhones` picks each syllable's
//!   pronunciation from the pronunciation trigram statistics;
//! - `th2ipa` writes the result in IPA.
//!
//! TLTK's collocation scoring adds every syllable pair it sees to its global
//! counts, so in Python the output depends on what the process read before.
//! Here those additions live in a [`Session`], one per text: the output of
//! each text equals a fresh Python process's.
//!
//! Where TLTK raises (a pattern whose codes outnumber its groups, a segment
//! with two transcriptions), [`Session::th2ipa`] returns `None`, and Piper
//! drops the run.

use std::collections::{HashMap, HashSet};

use super::data::{abstract_form, abstract_pron, Matcher, TltkData};

/// `SegSep`: a hard break between segments.
const SEG_SEP: char = '\u{1f}';
/// `SSegSep`: a soft break.
const SSEG_SEP: char = '\u{1e}';
/// `SylSep`.
const SYL_SEP: char = '~';
/// `WordSep`.
const WORD_SEP: char = '|';

/// What TLTK would have raised.
struct Raised;

type Step<T> = std::result::Result<T, Raised>;

/// One text's worth of TLTK state: the syllable pair counts its
/// collocation scoring adds.
pub struct Session<'a> {
    data: &'a TltkData,
    bi_added: HashMap<(String, String), u64>,
    count_added: HashMap<String, u64>,
    total_added: u64,
}

/// `PRONUN`: each syllable's candidate pronunciations in the order TLTK
/// adds them.
type Pronun = HashMap<String, Vec<String>>;

/// A chart row: end position → syllables, in insertion order.
type Row = Vec<(usize, Vec<String>)>;

fn row_get(row: &Row, k: usize) -> Option<&Vec<String>> {
    row.iter().find(|(key, _)| *key == k).map(|(_, v)| v)
}

fn row_set(row: &mut Row, k: usize, value: Vec<String>) {
    match row.iter_mut().find(|(key, _)| *key == k) {
        Some((_, v)) => *v = value,
        None => row.push((k, value)),
    }
}

impl<'a> Session<'a> {
    /// A fresh state over the loaded data.
    pub fn new(data: &'a TltkData) -> Self {
        Self {
            data,
            bi_added: HashMap::new(),
            count_added: HashMap::new(),
            total_added: 0,
        }
    }

    fn sym(&self, s: &str) -> Option<u32> {
        self.data.syms.get(s).copied()
    }

    fn bi_count(&self, a: &str, b: &str) -> u64 {
        let base = match (self.sym(a), self.sym(b)) {
            (Some(x), Some(y)) => self.data.bi.get(&[x, y]).copied().unwrap_or(0),
            _ => 0,
        };
        base + self
            .bi_added
            .get(&(a.to_string(), b.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn count(&self, w: &str) -> u64 {
        let base = self.sym(w).map_or(0, |x| self.data.count[x as usize]);
        base + self.count_added.get(w).copied().unwrap_or(0)
    }

    fn total_word(&self) -> u64 {
        self.data.total_word + self.total_added
    }

    /// `compute_colloc("mi", w1, w2)`, with its additions to the counts.
    fn colloc(&mut self, w1: &str, w2: &str) -> f64 {
        if self.bi_count(w1, w2) < 1 || self.count(w1) < 1 || self.count(w2) < 1 {
            *self
                .bi_added
                .entry((w1.to_string(), w2.to_string()))
                .or_default() += 1;
            *self.count_added.entry(w1.to_string()).or_default() += 1;
            *self.count_added.entry(w2.to_string()).or_default() += 1;
            self.total_added += 2;
        }
        let num = u128::from(self.bi_count(w1, w2)) * u128::from(self.total_word());
        let den = u128::from(self.count(w1)) * u128::from(self.count(w2));
        let mi = num as f64 / den as f64;
        (mi.ln() / 2f64.ln()).abs()
    }

    /// `prob_wb(w, pw1, pw2)`: the smoothed trigram log-probability.
    fn prob_wb(&self, w: &str, pw1: &str, pw2: &str) -> f64 {
        let d = self.data;
        let (s2, s1, s0) = (self.sym(pw2), self.sym(pw1), self.sym(w));
        let tri = match (s2, s1, s0) {
            (Some(a), Some(b), Some(c)) => d.tri.get(&[a, b, c]).copied().unwrap_or(0),
            _ => 0,
        };
        let bi_type = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => d.bi_type.get(&[a, b]).copied().unwrap_or(0),
            _ => 0,
        };
        let types = |a: Option<u32>| a.map_or(0, |a| d.types[a as usize]);
        let mut p3 = 0.0;
        let mut p2 = 0.0;
        let mut p1 = 0.0;
        if tri > 0 {
            p3 = tri as f64 / (self.bi_count(pw2, pw1) + bi_type(s2, s1)) as f64;
        }
        let bi = self.bi_count(pw1, w);
        if bi > 0 {
            p2 = bi as f64 / (self.count(pw1) + types(s1)) as f64;
        }
        let c = self.count(w);
        if c > 0 {
            p1 = c as f64 / (self.total_word() + d.total_lex) as f64;
        }
        let p = 0.8 * p3 + 0.15 * p2 + 0.1 * p1 + 1.0 / (self.total_word() + d.total_lex) as f64;
        p.ln()
    }

    /// `prob_trisyl`: the log-probability of a syllable sequence.
    fn prob_trisyl(&self, syllables: &[String]) -> f64 {
        let seg = SEG_SEP.to_string();
        let mut pw2: &str = &seg;
        let mut pw1: &str = &seg;
        let mut prob = 1.0;
        for w in syllables {
            prob += self.prob_wb(w, pw1, pw2);
            pw2 = pw1;
            pw1 = w;
        }
        prob
    }

    /// `th2ipa`: IPA syllables joined by `.`, words by spaces, each
    /// segment followed by `<s/>`; `None` where TLTK raises.
    pub fn th2ipa(&mut self, text: &str) -> Option<String> {
        let g2p = self.g2p(text).ok()?;
        let mut out = String::new();
        for seg in g2p.split("<s/>") {
            if seg.is_empty() {
                continue;
            }
            let parts: Vec<&str> = seg.split("<tr/>").collect();
            let [_, tran] = parts[..] else {
                return None;
            };
            out.push_str(&normalize_ipa(tran));
            out.push_str("<s/>");
        }
        Some(out)
    }

    /// `g2p`: `thai<tr/>transcription|` per piece, `<s/>` per segment.
    fn g2p(&mut self, text: &str) -> Step<String> {
        let input = preprocess(text);
        let mut output = String::new();
        for s in input.split(SEG_SEP) {
            for inp in s.split(SSEG_SEP) {
                if inp.is_empty() {
                    continue;
                }
                let first_is_thai = inp.chars().next().is_some_and(|c| ('ก'..='์').contains(&c));
                let out = if first_is_thai {
                    let (syllables, pronun) = self.sylparse(inp)?;
                    self.wordparse(&syllables, &pronun)
                } else {
                    format!("{inp}<tr/>{inp}")
                };
                output.push_str(&out);
                output.push(WORD_SEP);
            }
            output.push_str("<s/>");
        }
        Ok(output)
    }

    /// `sylparse`: the best syllable segmentation (`~`-joined, or
    /// `<Fail>…</Fail>`) and every syllable's pronunciations.
    fn sylparse(&self, input: &str) -> Step<(String, Pronun)> {
        let chars: Vec<char> = input.chars().collect();
        let n = chars.len();
        let offsets: Vec<usize> = input.char_indices().map(|(b, _)| b).collect();
        let data = self.data;

        // Every (entry, position) match, in PRON's order then position's,
        // as TLTK's `for f in PRON: for i in range(len)` loop visits them.
        struct Hit {
            entry: usize,
            start: usize,
            end: usize,
            groups: Vec<String>,
        }
        let mut hits: Vec<Hit> = Vec::new();
        for &entry in &data.patterns {
            let Matcher::Pattern(re) = &data.pron[entry].matcher else {
                continue;
            };
            for (i, &b) in offsets.iter().enumerate() {
                let Some(caps) = re.captures(&input[b..]) else {
                    continue;
                };
                let Some(whole) = caps.get(0) else {
                    continue;
                };
                let groups = (1..caps.len())
                    .map(|g| {
                        caps.get(g)
                            .map_or(String::new(), |m| m.as_str().to_string())
                    })
                    .collect();
                hits.push(Hit {
                    entry,
                    start: i,
                    end: i + whole.as_str().chars().count(),
                    groups,
                });
            }
        }
        for (i, &b) in offsets.iter().enumerate() {
            let Some(entries) = data.literal_by_first.get(&chars[i]) else {
                continue;
            };
            for &entry in entries {
                if let Matcher::Literal(text) = &data.pron[entry].matcher {
                    if input[b..].starts_with(text.as_str()) {
                        hits.push(Hit {
                            entry,
                            start: i,
                            end: i + text.chars().count(),
                            groups: Vec::new(),
                        });
                    }
                }
            }
        }
        hits.sort_by_key(|h| (h.entry, h.start));

        let mut pronun: Pronun = HashMap::new();
        let mut rows: Vec<Row> = vec![Vec::new(); n + 1];
        let mut prob_end: HashMap<(usize, usize), f64> = HashMap::new();
        // TLTK's `charmatch` outlives its loop iteration.
        let mut charmatch: Option<String> = None;
        for hit in &hits {
            let entry = &data.pron[hit.entry];
            let key: String = chars[hit.start..hit.end].iter().collect();
            match entry.groups {
                0 => pronun
                    .entry(key.clone())
                    .or_default()
                    .extend(entry.prons.iter().cloned()),
                1 => charmatch = Some(hit.groups[0].clone()),
                2 => charmatch = Some(format!("{} {}", hit.groups[0], hit.groups[1])),
                _ => {
                    charmatch = Some(format!(
                        "{} {} {}",
                        hit.groups[0], hit.groups[1], hit.groups[2]
                    ))
                }
            }
            row_set(&mut rows[hit.start], hit.end, vec![key.clone()]);
            for pron in &entry.prons {
                let codes: String = pron.chars().filter(|c| "AKYDZCRX".contains(*c)).collect();
                if codes.is_empty() {
                    pronun.entry(key.clone()).or_default().push(pron.clone());
                } else {
                    let chars_matched = charmatch.as_deref().ok_or(Raised)?;
                    let mut phone = replace_sounds(pron, &codes, chars_matched)?;
                    if not_exception(&codes, chars_matched, &key) {
                        let (assigned, tone) = assign_tone(&key, &phone, &codes, chars_matched)?;
                        phone = transform_syllable(&key, &assigned);
                        if tone.as_str() < "5" {
                            phone = phone.replace('8', &tone);
                            pronun.entry(key.clone()).or_default().push(phone.clone());
                        }
                    }
                    if key.starts_with("ทร") && phone.starts_with("thr") {
                        phone = phone.replace("thr", "s");
                        pronun.entry(key.clone()).or_default().push(phone.clone());
                    }
                }
            }
            // TLTK sets it once per pronunciation, always to this value.
            if !entry.prons.is_empty() {
                prob_end.insert(
                    (hit.start, hit.end),
                    self.prob_trisyl(std::slice::from_ref(&key)),
                );
            }
        }

        // Extend from position 0 with every syllable that starts where a
        // sequence ends, keeping the most probable sequence to each end.
        for j in 0..n {
            let Some(s1) = row_get(&rows[0], j).cloned() else {
                continue;
            };
            let row = rows[j].clone();
            for (k, s2) in row {
                let mut joined = s1.clone();
                joined.extend(s2);
                let merged = merge_karan(joined, &mut pronun);
                let p = self.prob_trisyl(&merged);
                if row_get(&rows[0], k).is_none()
                    || p > prob_end.get(&(0, k)).copied().unwrap_or(0.0)
                {
                    row_set(&mut rows[0], k, merged);
                    prob_end.insert((0, k), p);
                }
            }
        }
        let result = match row_get(&rows[0], n) {
            Some(syllables) => syllables.join(&SYL_SEP.to_string()),
            None => format!("<Fail>{input}</Fail>"),
        };
        Ok((result, pronun))
    }

    /// `wordparse`: words by collocation strength, then each syllable's
    /// pronunciation; `thai<tr/>transcription`.
    fn wordparse(&mut self, input: &str, pronun: &Pronun) -> String {
        let part = input.split(SEG_SEP).next().unwrap_or("");
        let syllables: Vec<&str> = part.split(SYL_SEP).collect();
        let n = syllables.len();
        let mut rows: Vec<Row> = vec![Vec::new(); n + 1];
        let mut strength: HashMap<(usize, usize), f64> = HashMap::new();
        for i in 0..n {
            rows[i].push((i + 1, vec![syllables[i].to_string()]));
            for j in i..=n {
                row_set(&mut rows[i], j, vec![syllables[i..j].join("~")]);
                let st = if j > i + 1 {
                    let mut st = 0.0;
                    for ii in i..j - 1 {
                        st += self.colloc(syllables[ii], syllables[ii + 1]);
                    }
                    st
                } else {
                    0.0
                };
                strength.insert((i, j), st);
            }
        }
        // chart_parse: split where the parts' strengths beat the whole's.
        for j in 0..n {
            let Some(s1) = row_get(&rows[0], j).cloned() else {
                continue;
            };
            let row = rows[j].clone();
            for (k, s2) in row {
                let whole = strength.get(&(0, k)).copied().unwrap_or(0.0);
                let split = strength.get(&(0, j)).copied().unwrap_or(0.0)
                    + strength.get(&(j, k)).copied().unwrap_or(0.0);
                if row_get(&rows[0], k).is_none() || split > whole {
                    strength.insert((0, k), split);
                    let mut words = s1.clone();
                    words.extend(s2);
                    row_set(&mut rows[0], k, words);
                }
            }
        }
        let words = row_get(&rows[0], n).cloned().unwrap_or_default();
        let mut out = words.join("|").replace("~ๆ", "|ๆ");
        out.push_str("<tr/>");
        let phones: Vec<String> = words
            .iter()
            .map(|w| self.select_phones(&w.split(SYL_SEP).collect::<Vec<_>>(), pronun))
            .collect();
        out.push_str(&phones.join("|"));
        repeat_maiyamok(&out)
    }

    /// `SelectPhones`: each syllable's most probable pronunciation in
    /// context, `~`-joined.
    fn select_phones(&self, syllables: &[&str], pronun: &Pronun) -> String {
        let mut padded = vec!["|"];
        padded.extend_from_slice(syllables);
        padded.push("|");
        let mut out = Vec::new();
        for i in 1..padded.len() - 1 {
            let empty = Vec::new();
            let prons = pronun.get(padded[i]).unwrap_or(&empty);
            if prons.len() == 1 {
                out.push(prons[0].clone());
                continue;
            }
            let mut best = String::new();
            let mut best_p = 0.0;
            for p in prons {
                let pr = self.prob_phone(p, padded[i - 1], padded[i], padded[i + 1]);
                let longer = p.contains('\'') && p.chars().count() > best.chars().count();
                if pr > best_p || (pr == best_p && longer) {
                    best_p = pr;
                    best = p.clone();
                }
            }
            out.push(best);
        }
        out.join("~")
    }

    /// `ProbPhone`: the score of pronunciation `p` for syllable `w` between
    /// `pw` and `nw`.
    fn prob_phone(&self, p: &str, pw: &str, w: &str, nw: &str) -> f64 {
        let d = self.data;
        let score = |n: f64, of: f64| (1.0 + n.ln()) / (1.0 + of.ln());
        let mut p3 = 0.0;
        let mut p2 = 0.0;
        let mut p1 = 0.0;
        let mut p0 = 0.0;
        let t = d.phone_stat(&["T", pw, w, nw, p]);
        if t > 0.0 {
            p3 = score(t, d.phone_stat(&["FT", pw, w, nw]));
        }
        let b = d.phone_stat(&["B", pw, w, p]);
        if b > 0.0 {
            p2 = score(b, d.phone_stat(&["FB", pw, w])) * 0.25;
        }
        let b = d.phone_stat(&["B", w, nw, p]);
        if b > 0.0 {
            p2 += score(b, d.phone_stat(&["FB", w, nw])) * 0.75;
        }
        let u = d.phone_stat(&["U", w, p]);
        if u > 0.0 {
            p1 = score(u, d.phone_stat(&["FU", w]));
        }
        let abs_w = abstract_form(w);
        let abs_p = abstract_pron(p);
        let a = d.phone_stat(&["A", &abs_w, &abs_p]);
        if a > 0.0 {
            p0 = score(a, d.phone_stat(&["FA", &abs_w]));
        }
        0.8 * p3 + 0.16 * p2 + 0.03 * p1 + 0.00001 * p0 + 0.00000000001
    }
}

/// Python's `str.isspace`, which TLTK's `\s` follows: Unicode white space
/// and the separators U+001C–U+001F.
pub fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `preprocess` for a run of Thai letters and marks (what Piper passes):
/// TLTK's spelling normalizations, a segment break after a `ๆ` that
/// something follows, and a soft break after a letter's `ๆ`. TLTK's other
/// rules need spaces, digits, dots or Latin letters, which such a run does
/// not have (the soft breaks its mixed-script rules add beside these make
/// only empty pieces, which `g2p` skips).
fn preprocess(input: &str) -> String {
    let mut s = input.to_string();
    for (from, to) in [
        ("\u{e40}\u{e40}", "\u{e41}"),
        ("\u{e4d}\u{e32}", "\u{e33}"),
        ("\u{e24}\u{e32}", "\u{e24}\u{e45}"),
        ("\u{e26}\u{e32}", "\u{e26}\u{e45}"),
    ] {
        s = s.replace(from, to);
    }
    // `ๆ([^ ])` → `ๆ SegSep \1` (TLTK runs it before the normalizations,
    // which neither make nor remove a ๆ).
    let chars: Vec<char> = s.chars().collect();
    let mut broken = Vec::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == 'ๆ' && i + 1 < chars.len() && chars[i + 1] != ' ' {
            broken.extend([chars[i], SEG_SEP, chars[i + 1]]);
            i += 2;
        } else {
            broken.push(chars[i]);
            i += 1;
        }
    }
    // `([ก-์][ฯๆ])` → `\1 SSegSep`.
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < broken.len() {
        if i + 1 < broken.len()
            && ('ก'..='์').contains(&broken[i])
            && matches!(broken[i + 1], 'ๆ' | 'ฯ')
        {
            out.extend([broken[i], broken[i + 1], SSEG_SEP]);
            i += 2;
        } else {
            out.push(broken[i]);
            i += 1;
        }
    }
    out
}

/// `ReplaceSnd`: each code of the pronunciation replaced by the sound of
/// the letter its group matched, then the tone placeholder `8`.
fn replace_sounds(pron: &str, codes: &str, charmatch: &str) -> Step<String> {
    let letters: Vec<&str> = charmatch.split(' ').collect();
    let mut sound = pron.to_string();
    for (i, code) in codes.chars().enumerate() {
        let letter = letters.get(i).ok_or(Raised)?;
        let mut cs = letter.chars();
        let (Some(c), None) = (cs.next(), cs.next()) else {
            return Err(Raised);
        };
        let value = sound_of(code, c).ok_or(Raised)?;
        sound = sound.replace(code, value);
    }
    sound.push('8');
    Ok(sound)
}

/// TLTK's `stable`: a letter's sound as an initial (`X` and the codes
/// sharing its table) or a final (`Y`, …).
fn sound_of(code: char, letter: char) -> Option<&'static str> {
    let initial = matches!(code, 'X' | 'A' | 'K' | 'C' | 'R' | 'G' | 'E');
    let finals = matches!(code, 'Y' | 'D' | 'Z' | 'H' | 'F');
    if initial {
        Some(match letter {
            'ก' => "k",
            'ข' | 'ฃ' | 'ค' | 'ฅ' | 'ฆ' => "kh",
            'ง' => "N",
            'จ' => "c",
            'ฉ' | 'ช' | 'ฌ' => "ch",
            'ซ' | 'ศ' | 'ษ' | 'ส' => "s",
            'ญ' | 'ย' => "j",
            'ฎ' | 'ด' => "d",
            'ฏ' | 'ต' => "t",
            'ฐ' | 'ฑ' | 'ฒ' | 'ถ' | 'ท' | 'ธ' => "th",
            'ณ' | 'น' => "n",
            'บ' => "b",
            'ป' => "p",
            'ผ' | 'พ' | 'ภ' => "ph",
            'ฝ' | 'ฟ' => "f",
            'ม' => "m",
            'ร' | 'ฤ' => "r",
            'ล' | 'ฦ' | 'ฬ' => "l",
            'ว' => "w",
            'ห' | 'ฮ' => "h",
            'อ' => "?",
            _ => return None,
        })
    } else if finals {
        Some(match letter {
            'ก' | 'ข' | 'ค' | 'ฆ' => "k",
            'ง' => "N",
            'จ' | 'ช' | 'ซ' | 'ฎ' | 'ฏ' | 'ฐ' | 'ฑ' | 'ฒ' | 'ด' | 'ต' | 'ถ' | 'ท' | 'ธ' | 'ศ'
            | 'ษ' | 'ส' => "t",
            'ฉ' | 'ฌ' | 'ผ' | 'ฝ' | 'ฤ' | 'ฦ' | 'ห' | 'อ' | 'ฮ' => "-",
            'ญ' | 'ณ' | 'น' | 'ร' | 'ล' | 'ฬ' => "n",
            'บ' | 'ป' | 'พ' | 'ฟ' | 'ภ' => "p",
            'ม' => "m",
            'ย' => "j",
            'ว' => "w",
            _ => return None,
        })
    } else {
        None
    }
}

/// TLTK's `AK`: the letters that may follow each leading consonant.
fn leading_allows(lead: &str) -> &'static str {
    match lead {
        "ก" => "นฎฐณตถบปมรลวษสพหฬ",
        "ข" => "จนณบมยรลฬดตทษภส",
        "ค" => "กชดตนณปมทฑหบ",
        "ฆ" => "กบรสช",
        "จ" => "ณตนมรลทยกด",
        "ฉ" => "กงนบพรลวทม",
        "ช" => "กญนยรลวฎคทบมอ",
        "ซ" => "ล",
        "ญ" => "กภลญ",
        "ณ" => "กร",
        "ด" => "นรมวบ",
        "ต" => "กตนภยรลฆงถบมวฤท",
        "ถ" => "กนลวศพงมร",
        "ท" => "กชนบมยรลวสหงศ",
        "ธ" => "นภมยรวกพช",
        "น" => "กทธฎภมยรวคขปลวห",
        "บ" => "ดรทพม",
        "ป" => "กฐฏณทนภรวศถฎตปยสหด",
        "ผ" => "งจชดนลสวกคณทยรอ",
        "ฝ" => "ร",
        "พ" => "กญนมยลวสหณจธ",
        "ภ" => "ยรคณมฤวน",
        "ม" => "กณตนยรลหศดธมสฆว",
        "ย" => "กดธภวสบศตมนถช",
        "ร" => "กจณดพภมยวสหชตถนบ",
        "ล" => "กคฆดตอบปพมลวห",
        "ว" => "ชณดนพภรลสมยกจฏตทธปฤศหคธ",
        "ศ" => "จณนบรลวศพดธกตมยส",
        "ษ" => "ณฎบภรนคธม",
        "ส" => "กคงดตถนบปพภมยรลวหอจฟสขทธฤ",
        "ห" => "กงพทนรภญนมยรลวบต",
        "อ" => "กงชณดตธนพภมยรลวสศคบฆจทปห",
        "ฑ" => "มสรนค",
        "ฐ" => "กจ",
        "ฏ" => "ก",
        "ฌ" => "ก",
        _ => "",
    }
}

/// `NotExceptionSyl`: whether a pronunciation may stand for the form.
/// (TLTK's rule for `ัว` read `aw` is written with a typo that can only
/// match a literal `]`, so it never applies and is left out.)
fn not_exception(codes: &str, charmatch: &str, form: &str) -> bool {
    if form.contains('.') {
        return true;
    }
    if codes.contains("CR") {
        const CLUSTERS: [&str; 17] = [
            "ผ ร", "ด ล", "ต ล", "ท ล", "ด ว", "ต ว", "ท ว", "บ ว", "ป ว", "พ ว", "ฟ ว", "ผ ว",
            "ส ล", "ส ว", "ร ร", "ศ ล", "ศ ว",
        ];
        if CLUSTERS.iter().any(|c| charmatch.starts_with(c)) {
            return false;
        }
    }
    if codes.contains("AK") {
        let parts: Vec<&str> = charmatch.split(' ').collect();
        if let [lead, next, ..] = parts[..] {
            if !leading_allows(lead).contains(next) {
                return false;
            }
        }
    }
    let khor_after: bool = {
        let cs: Vec<char> = charmatch.chars().collect();
        cs.windows(3)
            .any(|w| ('ก'..='ฮ').contains(&w[0]) && w[1] == ' ' && w[2] == 'ข')
    };
    if khor_after
        && !form
            .chars()
            .any(|c| matches!(c, '\u{e38}' | '\u{e31}' | '\u{e40}'))
    {
        return false;
    }
    true
}

/// `DeadSyl`: `L` for a live syllable (sonorant final or long vowel),
/// `D` for a dead one.
fn dead_or_live(phone: &str) -> char {
    let inx: String = phone
        .replace("ch", "C")
        .chars()
        .filter(|c| !('0'..='4').contains(c))
        .collect();
    let trimmed = inx.strip_suffix('8').unwrap_or(&inx);
    let last = trimmed.chars().last();
    if last.is_some_and(|c| "mnwjlN".contains(c)) {
        return 'L';
    }
    if last.is_some_and(|c| "pktfscC".contains(c)) {
        return 'D';
    }
    if has_long_vowel(&inx) {
        'L'
    } else {
        'D'
    }
}

/// `([aeiouxOU@])\1`: a doubled vowel letter.
fn has_long_vowel(s: &str) -> bool {
    let cs: Vec<char> = s.chars().collect();
    cs.windows(2)
        .any(|w| w[0] == w[1] && "aeiouxOU@".contains(w[0]))
}

/// `[aeiouxOU@][aeiouxOU@]+`: two vowel letters in a row (TLTK's test
/// for a long vowel in `ToneAssign`, which also counts diphthongs).
fn has_vowel_pair(s: &str) -> bool {
    let cs: Vec<char> = s.chars().collect();
    cs.windows(2)
        .any(|w| "aeiouxOU@".contains(w[0]) && "aeiouxOU@".contains(w[1]))
}

/// `ToneAssign`: the tone digit of a syllable from its initial's class,
/// whether it is live or dead, the vowel length and the tone mark (`9`: not
/// a possible reading, `''`: the pronunciation already has its tone).
fn assign_tone(form: &str, phone: &str, codes: &str, charmatch: &str) -> Step<(String, String)> {
    if phone.is_empty() {
        return Ok((String::new(), "9".into()));
    }
    // `[0-4]8`: the tone is written in the pronunciation.
    let cs: Vec<char> = phone.chars().collect();
    if cs
        .windows(2)
        .any(|w| ('0'..='4').contains(&w[0]) && w[1] == '8')
    {
        let mut out = String::new();
        let mut i = 0;
        while i < cs.len() {
            if i + 1 < cs.len() && ('0'..='4').contains(&cs[i]) && cs[i + 1] == '8' {
                out.push(cs[i]);
                i += 2;
            } else {
                out.push(cs[i]);
                i += 1;
            }
        }
        return Ok((out, String::new()));
    }
    let parts: Vec<&str> = charmatch.split(' ').collect();
    let (mut lead, mut init) = ("", "");
    if codes.contains('X') || codes == "GH" || codes == "EF" {
        init = parts[0];
    } else if codes.contains("AK") || codes.contains("CR") {
        lead = parts[0];
        if parts.len() > 1 {
            init = parts[1];
        }
    }
    let dead = dead_or_live(phone);
    let mut phone = phone.to_string();
    if phone.contains("+'") {
        let digit = if "ผฝถขสหฉศษ".contains(lead) || "กจดตบปอ".contains(lead)
        {
            "1"
        } else {
            "3"
        };
        phone = phone.replace('+', digit);
    }
    let mark = |m: char| form.contains(m);
    // The digit for: no mark, ่, ้, ๊, ๋.
    let pick = |table: [&str; 5]| -> String {
        let t = if mark('\u{e48}') {
            table[1]
        } else if mark('\u{e49}') {
            table[2]
        } else if mark('\u{e4a}') {
            table[3]
        } else if mark('\u{e4b}') {
            table[4]
        } else {
            table[0]
        };
        t.to_string()
    };
    let live = dead == 'L';
    let tone = if "กจดตฎฏบปอ".contains(init) {
        if live {
            pick(["0", "1", "2", "3", "4"])
        } else {
            pick(["1", "9", "2", "3", "4"])
        }
    } else if "ขฃฉฐถผฝสศษห".contains(init)
        || ("งญณนมยรลวฬ".contains(init) && !lead.is_empty() && "ขฃฉฐถผฝสศษห".contains(lead))
    {
        // A high initial, or a sonorant led by a high consonant.
        if live {
            pick(["4", "1", "2", "9", "9"])
        } else {
            pick(["1", "9", "2", "9", "9"])
        }
    } else if "งญณนมยรลวฬ".contains(init) && !lead.is_empty() && "กจดตฎฏบปอ".contains(lead)
    {
        if live {
            pick(["0", "1", "2", "3", "4"])
        } else {
            pick(["1", "9", "2", "3", "4"])
        }
    } else if "คฅฆชฌซฑฒทธพภฟฮงญณนมยรลวฬฤฦ".contains(init)
    {
        if live {
            pick(["0", "2", "3", "9", "9"])
        } else if has_vowel_pair(&phone) {
            pick(["2", "9", "3", "9", "4"])
        } else {
            pick(["3", "2", "9", "9", "4"])
        }
    } else {
        // TLTK returns nothing here, and unpacking it raises.
        return Err(Raised);
    };
    Ok((phone, tone))
}

/// `TransformSyl`: vowel shortening before a sonorant final, the silent
/// leading `อ` and `ห`, and `จร ซร ศร สร` read without `r`.
fn transform_syllable(form: &str, phone: &str) -> String {
    let mut phone = phone.to_string();
    let shortened = |p: &str, pair: &str| -> bool {
        let pat: Vec<char> = pair.chars().collect();
        let cs: Vec<char> = p.chars().collect();
        cs.windows(4).any(|w| {
            w[0] == pat[0] && w[1] == pat[1] && "nmN".contains(w[2]) && (w[3] == '1' || w[3] == '2')
        })
    };
    if shortened(&phone, "xx") {
        phone = phone.replace("xx", "x");
    } else if shortened(&phone, "ee") {
        phone = phone.replace("ee", "e");
    } else if shortened(&phone, "@@") {
        // Python's `re.sub(r'\@\@', '\@', …)` keeps the backslash.
        phone = phone.replace("@@", "\\@");
    }
    let silent_lead = matches!(form, "อย่า" | "อยู่" | "อย่าง" | "อยาก") && phone.contains('\'');
    let silent_h = form.contains('ห')
        && phone.contains("ha1")
        && !(form.ends_with("หนุ")
            || ["หก", "หท", "หพ", "หฤ", "หโ"]
                .iter()
                .any(|p| form.contains(p)));
    if silent_lead || silent_h {
        phone = phone.rsplit('\'').next().unwrap_or("").to_string();
    } else if has_pair(form, "จซศส", 'ร')
        && has_pair(&phone, "cs", 'r')
        && phone.chars().any(|c| c != '\'')
    {
        phone = phone.replace('r', "");
    }
    phone
}

/// Whether `s` has one of `firsts` followed by `second`.
fn has_pair(s: &str, firsts: &str, second: char) -> bool {
    let cs: Vec<char> = s.chars().collect();
    cs.windows(2)
        .any(|w| firsts.contains(w[0]) && w[1] == second)
}

/// `mergekaran1`: a short syllable with a silent letter (`์`) joins the
/// syllable before it, which lends it its pronunciations.
fn merge_karan(mut syllables: Vec<String>, pronun: &mut Pronun) -> Vec<String> {
    let mut merged_seen: HashSet<(String, String)> = HashSet::new();
    let mut out = Vec::with_capacity(syllables.len());
    let mut pending: Option<String> = None;
    syllables.reverse();
    for s in syllables {
        let cs: Vec<char> = s.chars().collect();
        let vowel_karan = (1..cs.len().saturating_sub(1))
            .any(|p| (cs[p] == '\u{e34}' || cs[p] == '\u{e38}') && cs[p + 1] == '\u{e4c}');
        let karan = (1..cs.len()).any(|p| cs[p] == '\u{e4c}');
        if vowel_karan {
            if cs.len() < 4 {
                pending = Some(s);
                continue;
            }
        } else if karan && cs.len() < 4 {
            pending = Some(s);
            continue;
        }
        match pending.take() {
            Some(x) => {
                let joined = format!("{s}{x}");
                let prons = pronun.get(&s).cloned().unwrap_or_default();
                for ph in prons {
                    if merged_seen.insert((joined.clone(), ph.clone())) {
                        pronun.entry(joined.clone()).or_default().push(ph);
                    }
                }
                out.push(joined);
            }
            None => out.push(s),
        }
    }
    out.reverse();
    out
}

/// The `ๆ` rule of `wordparse`:
/// `(<tr/>|\|)([?a-zENOU0-9~'@^]+?)[|~]ๆ` → `\1\2|\2`.
fn repeat_maiyamok(s: &str) -> String {
    let re = maiyamok_regex();
    re.replace_all(s, "${1}${2}|${2}").into_owned()
}

fn maiyamok_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(<tr/>|\|)([?a-zENOU0-9~'@^]+?)[|~]ๆ")
            .unwrap_or_else(|e| panic!("constant regex: {e}"))
    })
}

/// `th2ipa`'s rewriting of TLTK's notation: doubled vowels long, aspirates,
/// the vowel and consonant letters, separators, and tones numbered 1–5.
fn normalize_ipa(tran: &str) -> String {
    let cs: Vec<char> = tran.chars().collect();
    let mut long = String::with_capacity(tran.len() + 8);
    let mut i = 0;
    while i < cs.len() {
        if i + 1 < cs.len() && cs[i] == cs[i + 1] && "aeiouUxO@".contains(cs[i]) {
            long.push(cs[i]);
            long.push('ː');
            i += 2;
        } else {
            long.push(cs[i]);
            i += 1;
        }
    }
    let cs: Vec<char> = long.chars().collect();
    let mut out = String::with_capacity(long.len() + 8);
    let mut i = 0;
    while i < cs.len() {
        if i + 1 < cs.len() && "ptkc".contains(cs[i]) && cs[i + 1] == 'h' {
            out.push(cs[i]);
            out.push('ʰ');
            i += 2;
        } else {
            out.push(cs[i]);
            i += 1;
        }
    }
    for (from, to) in [
        ('O', '\u{1d10}'),
        ('x', '\u{25b}'),
        ('@', '\u{264}'),
        ('N', '\u{14b}'),
        ('?', '\u{294}'),
        ('U', '\u{26f}'),
        ('|', ' '),
        ('~', '.'),
        ('^', '.'),
        ('\'', '.'),
        ('4', '5'),
        ('3', '4'),
        ('2', '3'),
        ('1', '2'),
        ('0', '1'),
    ] {
        out = out.replace(from, &to.to_string());
    }
    out
}

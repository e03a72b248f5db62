//! OpenJTalk's full-context labels (`njd2jpcommon` then `JPCommon_make_label`,
//! as pyopenjtalk-plus's `make_label` runs them): the NJD words become
//! phonemes, morae, words, accent phrases and breath groups, and each
//! phoneme gets one HTS label (`xx^xx-sil+k=o/A:…/K:…`) describing its
//! neighbours and its place in each level.
//!
//! OpenJTalk keeps five doubly linked lists with `up` pointers between
//! levels; here they are arenas linked by index, so that the port reads
//! like the C. A pause (`pau`) has no mora above it, as in OpenJTalk.

mod jpcommon_rules;
mod njd2jpcommon_rules;

use jpcommon_rules::*;
use njd2jpcommon_rules::*;

use super::njd::Feature;

const MAX_S: i32 = 19;
const MAX_M: i32 = 49;
const MAX_L: i32 = 99;
const MAX_LL: i32 = 199;

type Id = usize;

#[derive(Debug, Clone)]
struct Phoneme {
    phoneme: String,
    prev: Option<Id>,
    next: Option<Id>,
    /// The mora; none for a pause.
    up: Option<Id>,
}

#[derive(Debug, Clone)]
struct Mora {
    head: Id,
    tail: Id,
    next: Option<Id>,
    up: Id,
}

#[derive(Debug, Clone)]
struct Word {
    pos: &'static str,
    ctype: &'static str,
    cform: &'static str,
    head: Id,
    tail: Id,
    prev: Option<Id>,
    next: Option<Id>,
    /// The accent phrase, set once the word is complete.
    up: Option<Id>,
}

#[derive(Debug, Clone)]
struct AccentPhrase {
    accent: i32,
    emotion: Option<&'static str>,
    excl: Option<&'static str>,
    head: Id,
    tail: Id,
    prev: Option<Id>,
    next: Option<Id>,
    up: Id,
}

#[derive(Debug, Clone)]
struct BreathGroup {
    head: Id,
    tail: Id,
    prev: Option<Id>,
    next: Option<Id>,
}

/// The utterance being built (OpenJTalk's `JPCommonLabel`); the `*_tail`
/// fields are the last element of each level's list.
#[derive(Debug, Default)]
struct Label {
    phonemes: Vec<Phoneme>,
    moras: Vec<Mora>,
    words: Vec<Word>,
    accents: Vec<AccentPhrase>,
    breaths: Vec<BreathGroup>,
    phoneme_tail: Option<Id>,
    mora_tail: Option<Id>,
    word_tail: Option<Id>,
    accent_tail: Option<Id>,
    breath_tail: Option<Id>,
    short_pause_flag: bool,
}

/// C's `strtopcmp`: the pattern's length when `s` starts with it.
fn strtopcmp(s: &str, pattern: &str) -> Option<usize> {
    s.starts_with(pattern).then_some(pattern.len())
}

fn limit(value: i32, min: i32, max: i32) -> i32 {
    value.clamp(min, max)
}

/// `convert_pos`/`convert_ctype`/`convert_cform` of njd2jpcommon.c, then
/// the id lookups of `JPCommonLabelWord_initialize`: an unknown value
/// takes the table's first entry, as OpenJTalk does.
fn pos_code(f: &Feature) -> &'static str {
    let jpcommon_pos = NJD2JPCOMMON_POS_LIST
        .chunks_exact(5)
        .find(|r| {
            r[0] == f.pos && r[1] == f.pos_group1 && r[2] == f.pos_group2 && r[3] == f.pos_group3
        })
        .map_or(NJD2JPCOMMON_POS_LIST[4], |r| r[4]);
    lookup(JPCOMMON_POS_LIST, jpcommon_pos)
}

fn ctype_code(ctype: &str) -> &'static str {
    let converted = NJD2JPCOMMON_CTYPE_LIST
        .chunks_exact(2)
        .find(|r| r[0] == ctype)
        .map_or(NJD2JPCOMMON_CTYPE_LIST[1], |r| r[1]);
    lookup(JPCOMMON_CTYPE_LIST, converted)
}

fn cform_code(cform: &str) -> &'static str {
    let converted = NJD2JPCOMMON_CFORM_LIST
        .chunks_exact(2)
        .find(|r| r[0] == cform)
        .map_or(NJD2JPCOMMON_CFORM_LIST[1], |r| r[1]);
    lookup(JPCOMMON_CFORM_LIST, converted)
}

fn lookup(list: &[&'static str], key: &str) -> &'static str {
    list.chunks_exact(2)
        .find(|r| r[0] == key)
        .map_or(list[1], |r| r[1])
}

/// pyopenjtalk's `make_label`: one full-context label per phoneme, with
/// `sil` at both ends; empty when the words have no phoneme.
pub fn make_label(features: &[Feature]) -> Vec<String> {
    let mut label = Label::default();
    for f in features {
        label.push_word(
            &f.pron,
            pos_code(f),
            ctype_code(&f.ctype),
            cform_code(&f.cform),
            f.acc,
            f.chain_flag,
        );
    }
    label.make()
}

impl Label {
    fn phoneme_is_pause(&self, id: Option<Id>) -> bool {
        id.is_some_and(|p| self.phonemes[p].phoneme == JPCOMMON_PHONEME_SHORT_PAUSE)
    }

    /// The accent phrase of a phoneme (phoneme → mora → word → phrase).
    fn accent_of(&self, phoneme: Id) -> Option<Id> {
        let mora = self.phonemes[phoneme].up?;
        self.words[self.moras[mora].up].up
    }

    fn alloc_phoneme(&mut self, phoneme: &str, prev: Option<Id>, up: Option<Id>) -> Id {
        self.phonemes.push(Phoneme {
            phoneme: phoneme.to_owned(),
            prev,
            next: None,
            up,
        });
        let id = self.phonemes.len() - 1;
        if let Some(p) = prev {
            self.phonemes[p].next = Some(id);
        }
        id
    }

    fn alloc_mora(&mut self, phoneme: Id, prev: Option<Id>, up: Id) -> Id {
        self.moras.push(Mora {
            head: phoneme,
            tail: phoneme,
            next: None,
            up,
        });
        let id = self.moras.len() - 1;
        if let Some(m) = prev {
            self.moras[m].next = Some(id);
        }
        id
    }

    /// `JPCommonLabel_insert_pause`: a pending pause becomes a `pau`
    /// phoneme, never two in a row, never first.
    fn insert_pause(&mut self) {
        if !self.short_pause_flag {
            return;
        }
        if let Some(tail) = self.phoneme_tail {
            if self.phonemes[tail].phoneme == JPCOMMON_PHONEME_SHORT_PAUSE {
                return;
            }
            self.phoneme_tail =
                Some(self.alloc_phoneme(JPCOMMON_PHONEME_SHORT_PAUSE, Some(tail), None));
        }
        self.short_pause_flag = false;
    }

    /// Marks the accent phrase before the pending pause with a `？` or `！`.
    fn flag_last_phrase(&mut self, exclamation: bool) {
        let Some(tail) = self.phoneme_tail else {
            return;
        };
        let phoneme = if self.phoneme_is_pause(Some(tail)) {
            self.phonemes[tail].prev
        } else {
            Some(tail)
        };
        if let Some(a) = phoneme.and_then(|p| self.accent_of(p)) {
            let flag = if exclamation {
                &mut self.accents[a].excl
            } else {
                &mut self.accents[a].emotion
            };
            if flag.is_none() {
                *flag = Some(if exclamation {
                    JPCOMMON_FLAG_EXCLAMATION
                } else {
                    JPCOMMON_FLAG_QUESTION
                });
            }
        }
    }

    /// `JPCommonLabel_push_word`.
    fn push_word(
        &mut self,
        pron: &str,
        pos: &'static str,
        ctype: &'static str,
        cform: &'static str,
        acc: i32,
        chain_flag: i32,
    ) {
        if pron == JPCOMMON_MORA_SHORT_PAUSE {
            self.short_pause_flag = true;
            return;
        }
        if pron == JPCOMMON_MORA_QUESTION || pron == JPCOMMON_MORA_EXCLAMATION {
            self.flag_last_phrase(pron == JPCOMMON_MORA_EXCLAMATION);
            self.short_pause_flag = true;
            return;
        }
        let mut is_first_word = true;
        let mut rest = pron;
        while !rest.is_empty() {
            if let Some(n) = strtopcmp(rest, JPCOMMON_MORA_LONG_VOWEL) {
                // A long vowel repeats the previous phoneme in a new mora of
                // the previous mora's word.
                if let (Some(p), Some(m), false) =
                    (self.phoneme_tail, self.mora_tail, self.short_pause_flag)
                {
                    let word = self.moras[m].up;
                    let phoneme = self.phonemes[p].phoneme.clone();
                    let new_p = self.alloc_phoneme(&phoneme, Some(p), None);
                    let new_m = self.alloc_mora(new_p, Some(m), word);
                    self.phonemes[new_p].up = Some(new_m);
                    self.phoneme_tail = Some(new_p);
                    self.mora_tail = Some(new_m);
                    if let Some(w) = self.word_tail {
                        self.words[w].tail = new_m;
                    }
                }
                rest = &rest[n..];
            } else if let Some(n) = strtopcmp(rest, JPCOMMON_MORA_UNVOICE) {
                // ’ devoices the previous vowel.
                if let (Some(p), false) = (self.phoneme_tail, is_first_word) {
                    let phoneme = &mut self.phonemes[p].phoneme;
                    if let Some(r) = JPCOMMON_UNVOICE_LIST
                        .chunks_exact(2)
                        .find(|r| r[0] == phoneme)
                    {
                        *phoneme = r[1].to_owned();
                    }
                }
                rest = &rest[n..];
            } else {
                let Some((n, rule)) = JPCOMMON_MORA_LIST.chunks_exact(3).find_map(|r| {
                    strtopcmp(rest, r[0].unwrap_or(""))
                        .filter(|_| r[0].is_some())
                        .map(|n| (n, r))
                }) else {
                    // Not a mora: OpenJTalk stops reading this word.
                    break;
                };
                let first = rule[1].unwrap_or(JPCOMMON_PHONEME_UNKNOWN);
                self.insert_pause();
                match (self.phoneme_tail, self.mora_tail, self.word_tail) {
                    (Some(p), Some(m), Some(w)) => {
                        let new_p = self.alloc_phoneme(first, Some(p), None);
                        let (word, new_word) = if is_first_word {
                            self.words.push(Word {
                                pos,
                                ctype,
                                cform,
                                head: 0,
                                tail: 0,
                                prev: Some(w),
                                next: None,
                                up: None,
                            });
                            let id = self.words.len() - 1;
                            self.words[w].next = Some(id);
                            self.word_tail = Some(id);
                            is_first_word = false;
                            (id, true)
                        } else {
                            (self.moras[m].up, false)
                        };
                        let new_m = self.alloc_mora(new_p, Some(m), word);
                        self.phonemes[new_p].up = Some(new_m);
                        if new_word {
                            self.words[word].head = new_m;
                        }
                        if let Some(tail) = self.word_tail {
                            self.words[tail].tail = new_m;
                        }
                        self.phoneme_tail = Some(new_p);
                        self.mora_tail = Some(new_m);
                    }
                    _ => {
                        // The utterance's first mora.
                        let new_p = self.alloc_phoneme(first, None, None);
                        self.words.push(Word {
                            pos,
                            ctype,
                            cform,
                            head: 0,
                            tail: 0,
                            prev: None,
                            next: None,
                            up: None,
                        });
                        let word = self.words.len() - 1;
                        let new_m = self.alloc_mora(new_p, None, word);
                        self.phonemes[new_p].up = Some(new_m);
                        self.words[word].head = new_m;
                        self.words[word].tail = new_m;
                        self.phoneme_tail = Some(new_p);
                        self.mora_tail = Some(new_m);
                        self.word_tail = Some(word);
                        is_first_word = false;
                    }
                }
                if let Some(second) = rule[2] {
                    self.insert_pause();
                    if let (Some(p), Some(m)) = (self.phoneme_tail, self.mora_tail) {
                        let new_p = self.alloc_phoneme(second, Some(p), Some(m));
                        self.phoneme_tail = Some(new_p);
                        self.moras[m].tail = new_p;
                    }
                }
                rest = &rest[n..];
            }
        }
        if is_first_word || self.phoneme_tail.is_none() || self.phoneme_is_pause(self.phoneme_tail)
        {
            return;
        }
        let Some(w) = self.word_tail else { return };
        match (self.words[w].prev, self.accent_tail, self.breath_tail) {
            (Some(prev), Some(a), Some(b)) => {
                if chain_flag == 1 {
                    self.words[w].up = Some(a);
                    self.accents[a].tail = w;
                } else {
                    let prev_last = self.moras[self.words[prev].tail].tail;
                    let new_breath = self.phoneme_is_pause(self.phonemes[prev_last].next);
                    let up = if new_breath {
                        self.breaths.push(BreathGroup {
                            head: 0,
                            tail: 0,
                            prev: Some(b),
                            next: None,
                        });
                        let id = self.breaths.len() - 1;
                        self.breaths[b].next = Some(id);
                        id
                    } else {
                        b
                    };
                    self.accents.push(AccentPhrase {
                        accent: acc,
                        emotion: None,
                        excl: None,
                        head: w,
                        tail: w,
                        prev: Some(a),
                        next: None,
                        up,
                    });
                    let id = self.accents.len() - 1;
                    self.accents[a].next = Some(id);
                    self.words[w].up = Some(id);
                    if new_breath {
                        self.breaths[up].head = id;
                    }
                    self.breaths[up].tail = id;
                    self.accent_tail = Some(id);
                    self.breath_tail = Some(up);
                }
            }
            _ => {
                // The utterance's first word.
                self.breaths.push(BreathGroup {
                    head: 0,
                    tail: 0,
                    prev: None,
                    next: None,
                });
                let b = self.breaths.len() - 1;
                self.accents.push(AccentPhrase {
                    accent: acc,
                    emotion: None,
                    excl: None,
                    head: w,
                    tail: w,
                    prev: None,
                    next: None,
                    up: b,
                });
                let a = self.accents.len() - 1;
                self.breaths[b].head = a;
                self.breaths[b].tail = a;
                self.words[w].up = Some(a);
                self.accent_tail = Some(a);
                self.breath_tail = Some(b);
            }
        }
    }

    /// The head mora of an accent phrase.
    fn phrase_head_mora(&self, a: Id) -> Id {
        self.words[self.accents[a].head].head
    }

    /// The tail mora of an accent phrase.
    fn phrase_tail_mora(&self, a: Id) -> Id {
        self.words[self.accents[a].tail].tail
    }

    /// Counts morae along the utterance's mora list from `from` up to and
    /// including `to` (OpenJTalk's index/count walks).
    fn walk_moras(&self, from: Id, to: Id) -> i32 {
        let mut i = 0;
        let mut m = Some(from);
        while let Some(id) = m {
            i += 1;
            if id == to {
                break;
            }
            m = self.moras[id].next;
        }
        i
    }

    fn walk_phrases(&self, from: Id, to: Id) -> i32 {
        let mut i = 0;
        let mut a = Some(from);
        while let Some(id) = a {
            i += 1;
            if id == to {
                break;
            }
            a = self.accents[id].next;
        }
        i
    }

    fn mora_phrase(&self, m: Id) -> Option<Id> {
        self.words[self.moras[m].up].up
    }

    fn index_mora_in_accent_phrase(&self, m: Id) -> i32 {
        self.mora_phrase(m)
            .map_or(0, |a| self.walk_moras(self.phrase_head_mora(a), m))
    }

    fn count_mora_in_accent_phrase(&self, m: Id) -> i32 {
        self.mora_phrase(m).map_or(0, |a| {
            self.walk_moras(self.phrase_head_mora(a), self.phrase_tail_mora(a))
        })
    }

    fn index_accent_phrase_in_breath_group(&self, a: Id) -> i32 {
        self.walk_phrases(self.breaths[self.accents[a].up].head, a)
    }

    fn count_accent_phrase_in_breath_group(&self, a: Id) -> i32 {
        let b = &self.breaths[self.accents[a].up];
        self.walk_phrases(b.head, b.tail)
    }

    fn breath_head_mora(&self, b: Id) -> Id {
        self.phrase_head_mora(self.breaths[b].head)
    }

    fn index_mora_in_breath_group(&self, m: Id) -> i32 {
        self.mora_phrase(m).map_or(0, |a| {
            self.walk_moras(self.breath_head_mora(self.accents[a].up), m)
        })
    }

    fn count_mora_in_breath_group(&self, m: Id) -> i32 {
        self.mora_phrase(m).map_or(0, |a| {
            let b = self.accents[a].up;
            self.walk_moras(
                self.breath_head_mora(b),
                self.phrase_tail_mora(self.breaths[b].tail),
            )
        })
    }

    // Every level's list is only ever appended to, so an element's arena
    // index is its place in the utterance and the arena's length the
    // list's: OpenJTalk's walks along `prev`/`next` to the ends give the
    // same numbers.

    fn index_breath_group_in_utterance(&self, b: Id) -> i32 {
        b as i32 + 1
    }

    fn count_breath_group_in_utterance(&self, _b: Id) -> i32 {
        self.breaths.len() as i32
    }

    fn index_accent_phrase_in_utterance(&self, a: Id) -> i32 {
        a as i32 + 1
    }

    fn count_accent_phrase_in_utterance(&self, _a: Id) -> i32 {
        self.accents.len() as i32
    }

    fn index_mora_in_utterance(&self, m: Id) -> i32 {
        m as i32 + 1
    }

    fn count_mora_in_utterance(&self, _m: Id) -> i32 {
        self.moras.len() as i32
    }

    /// A phrase's mora count and accent (its count when flat), and its
    /// question and exclamation flags, as the E, F and G fields print them.
    fn phrase_summary(&self, a: Id) -> (i32, i32, &'static str, &'static str) {
        let head = self.phrase_head_mora(a);
        let count = self.count_mora_in_accent_phrase(head);
        let phrase = &self.accents[a];
        let accent = if phrase.accent == 0 {
            count
        } else {
            phrase.accent
        };
        (
            limit(count, 1, MAX_M),
            limit(accent, 1, MAX_M),
            phrase.emotion.unwrap_or("0"),
            phrase.excl.unwrap_or("0"),
        )
    }

    fn word_of(&self, p: Id) -> Option<Id> {
        self.phonemes[p].up.map(|m| self.moras[m].up)
    }

    fn breath_of(&self, p: Id) -> Option<Id> {
        self.accent_of(p).map(|a| self.accents[a].up)
    }

    /// `JPCommonLabel_make`: the labels, one per phoneme plus the two `sil`.
    fn make(&self) -> Vec<String> {
        // The first phoneme allocated is the utterance's first: a pause is
        // never first.
        if self.phonemes.is_empty() {
            return Vec::new();
        }
        let order: Vec<Id> = std::iter::successors(Some(0), |&p| self.phonemes[p].next).collect();
        let size = order.len() + 2;
        let mut names: Vec<&str> = vec![
            JPCOMMON_PHONEME_UNKNOWN,
            JPCOMMON_PHONEME_UNKNOWN,
            JPCOMMON_PHONEME_SILENT,
        ];
        names.extend(order.iter().map(|&p| self.phonemes[p].phoneme.as_str()));
        names.extend([
            JPCOMMON_PHONEME_SILENT,
            JPCOMMON_PHONEME_UNKNOWN,
            JPCOMMON_PHONEME_UNKNOWN,
        ]);
        let breath_head = self.breaths.first().map(|_| 0);
        let accent_head = self.accents.first().map(|_| 0);
        let mora_head = self.moras.first().map(|_| 0);
        let mut labels = Vec::with_capacity(size);
        let mut cursor = 0;
        for i in 0..size {
            let p = order[cursor];
            let edge = i == 0 || i == size - 1;
            let pause = self.phonemes[p].phoneme == JPCOMMON_PHONEME_SHORT_PAUSE;
            let prev_p = self.phonemes[p].prev;
            let next_p = self.phonemes[p].next;
            let mut s = format!(
                "{}^{}-{}+{}={}",
                names[i],
                names[i + 1],
                names[i + 2],
                names[i + 3],
                names[i + 4]
            );
            // A: the mora's place relative to the accent nucleus.
            match self.phonemes[p].up.filter(|_| !edge && !pause) {
                Some(m) => {
                    let tmp1 = self.index_mora_in_accent_phrase(m);
                    let count = self.count_mora_in_accent_phrase(m);
                    let accent = self.mora_phrase(m).map_or(0, |a| self.accents[a].accent);
                    let tmp2 = if accent == 0 { count } else { accent };
                    s += &format!(
                        "/A:{}+{}+{}",
                        limit(tmp1 - tmp2, -MAX_M, MAX_M),
                        limit(tmp1, 1, MAX_M),
                        limit(count - tmp1 + 1, 1, MAX_M)
                    );
                }
                None => s += "/A:xx+xx+xx",
            }
            // B: the previous word's part of speech and conjugation.
            let w = if pause {
                prev_p.and_then(|q| self.word_of(q))
            } else {
                self.word_of(p).and_then(|w| {
                    let prev = self.words[w].prev?;
                    Some(if i == size - 1 { w } else { prev })
                })
            };
            match w {
                Some(w) => {
                    s += &format!(
                        "/B:{}-{}_{}",
                        self.words[w].pos, self.words[w].ctype, self.words[w].cform
                    )
                }
                None => s += "/B:xx-xx_xx",
            }
            // C: this word's.
            match self.word_of(p).filter(|_| !edge && !pause) {
                Some(w) => {
                    s += &format!(
                        "/C:{}_{}+{}",
                        self.words[w].pos, self.words[w].ctype, self.words[w].cform
                    )
                }
                None => s += "/C:xx_xx+xx",
            }
            // D: the next word's.
            let w = if pause {
                next_p.and_then(|q| self.word_of(q))
            } else {
                self.word_of(p).and_then(|w| {
                    let next = self.words[w].next?;
                    Some(if i == 0 { w } else { next })
                })
            };
            match w {
                Some(w) => {
                    s += &format!(
                        "/D:{}+{}_{}",
                        self.words[w].pos, self.words[w].ctype, self.words[w].cform
                    )
                }
                None => s += "/D:xx+xx_xx",
            }
            // E: the previous accent phrase, and whether a pause follows it.
            let a = if pause {
                prev_p.and_then(|q| self.accent_of(q))
            } else if i == size - 1 {
                self.accent_of(p)
            } else {
                self.accent_of(p).and_then(|a| self.accents[a].prev)
            };
            match a {
                Some(a) => {
                    let (count, accent, emotion, excl) = self.phrase_summary(a);
                    s += &format!("/E:{count}_{accent}!{emotion}_{excl}");
                }
                None => s += "/E:xx_xx!xx_xx",
            }
            match a.filter(|_| !edge && !pause) {
                Some(a) => {
                    let last = self.moras[self.phrase_tail_mora(a)].tail;
                    let paused = self.phoneme_is_pause(self.phonemes[last].next);
                    s += &format!("-{}", if paused { 0 } else { 1 });
                }
                None => s += "-xx",
            }
            // F: this accent phrase.
            match self.accent_of(p).filter(|_| !edge && !pause) {
                Some(a) => {
                    let (count, accent, emotion, excl) = self.phrase_summary(a);
                    let tmp1 = self.index_accent_phrase_in_breath_group(a);
                    let head = self.phrase_head_mora(a);
                    let tmp2 = self.index_mora_in_breath_group(head);
                    s += &format!(
                        "/F:{count}_{accent}#{emotion}_{excl}@{}_{}|{}_{}",
                        limit(tmp1, 1, MAX_M),
                        limit(
                            self.count_accent_phrase_in_breath_group(a) - tmp1 + 1,
                            1,
                            MAX_M
                        ),
                        limit(tmp2, 1, MAX_L),
                        limit(self.count_mora_in_breath_group(head) - tmp2 + 1, 1, MAX_L)
                    );
                }
                None => s += "/F:xx_xx#xx_xx@xx_xx|xx_xx",
            }
            // G: the next accent phrase, and whether a pause precedes it.
            let a = if pause {
                next_p.and_then(|q| self.accent_of(q))
            } else if i == 0 {
                self.accent_of(p)
            } else {
                self.accent_of(p).and_then(|a| self.accents[a].next)
            };
            match a {
                Some(a) => {
                    let (count, accent, emotion, excl) = self.phrase_summary(a);
                    s += &format!("/G:{count}_{accent}%{emotion}_{excl}");
                }
                None => s += "/G:xx_xx%xx_xx",
            }
            match a.filter(|_| !edge && !pause) {
                Some(a) => {
                    let first = self.moras[self.phrase_head_mora(a)].head;
                    let paused = self.phoneme_is_pause(self.phonemes[first].prev);
                    s += &format!("_{}", if paused { 0 } else { 1 });
                }
                None => s += "_xx",
            }
            // H: the previous breath group.
            let b = if pause {
                prev_p.and_then(|q| self.breath_of(q))
            } else if i == size - 1 {
                self.breath_of(p)
            } else {
                self.breath_of(p).and_then(|b| self.breaths[b].prev)
            };
            match b {
                Some(b) => s += &format!("/H:{}_{}", self.breath_phrases(b), self.breath_moras(b)),
                None => s += "/H:xx_xx",
            }
            // I: this breath group and its place in the utterance.
            match self.breath_of(p).filter(|_| !edge && !pause) {
                Some(b) => {
                    let head = self.breaths[b].head;
                    let head_mora = self.phrase_head_mora(head);
                    let tmp1 = self.index_breath_group_in_utterance(b);
                    let tmp2 = self.index_accent_phrase_in_utterance(head);
                    let tmp3 = self.index_mora_in_utterance(head_mora);
                    s += &format!(
                        "/I:{}-{}@{}+{}&{}-{}|{}+{}",
                        self.breath_phrases(b),
                        self.breath_moras(b),
                        limit(tmp1, 1, MAX_S),
                        limit(self.count_breath_group_in_utterance(b) - tmp1 + 1, 1, MAX_S),
                        limit(tmp2, 1, MAX_M),
                        limit(
                            self.count_accent_phrase_in_utterance(head) - tmp2 + 1,
                            1,
                            MAX_M
                        ),
                        limit(tmp3, 1, MAX_LL),
                        limit(
                            self.count_mora_in_utterance(head_mora) - tmp3 + 1,
                            1,
                            MAX_LL
                        )
                    );
                }
                None => s += "/I:xx-xx@xx+xx&xx-xx|xx+xx",
            }
            // J: the next breath group.
            let b = if pause {
                next_p.and_then(|q| self.breath_of(q))
            } else if i == 0 {
                self.breath_of(p)
            } else {
                self.breath_of(p).and_then(|b| self.breaths[b].next)
            };
            match b {
                Some(b) => s += &format!("/J:{}_{}", self.breath_phrases(b), self.breath_moras(b)),
                None => s += "/J:xx_xx",
            }
            // K: the utterance.
            s += &format!(
                "/K:{}+{}-{}",
                limit(
                    breath_head.map_or(0, |b| self.count_breath_group_in_utterance(b)),
                    1,
                    MAX_S
                ),
                limit(
                    accent_head.map_or(0, |a| self.count_accent_phrase_in_utterance(a)),
                    1,
                    MAX_M
                ),
                limit(
                    mora_head.map_or(0, |m| self.count_mora_in_utterance(m)),
                    1,
                    MAX_LL
                )
            );
            labels.push(s);
            if 0 < i && i < size - 2 {
                cursor += 1;
            }
        }
        labels
    }

    /// A breath group's accent phrases, limited as H, I and J print them.
    fn breath_phrases(&self, b: Id) -> i32 {
        limit(
            self.count_accent_phrase_in_breath_group(self.breaths[b].head),
            1,
            MAX_M,
        )
    }

    /// A breath group's morae, limited likewise.
    fn breath_moras(&self, b: Id) -> i32 {
        limit(
            self.count_mora_in_breath_group(self.breath_head_mora(b)),
            1,
            MAX_L,
        )
    }
}

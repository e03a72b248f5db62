//! `njd_set_unvoiced_vowel`: marks devoiced vowels with ’ in each word's
//! pronunciation, mora by mora with two morae of look-ahead across words:
//! fillers never (rule 0), す of です/ます unless a question or ー follows
//! (rule 1), し of verbs, auxiliaries and particles readily (rule 2), never
//! twice in a row (rule 3), never on the accent nucleus (rule 4), else i
//! and u between voiceless consonants (rule 5, with OpenJTalk's
//! exceptions).

use super::pronunciation::strtopcmp;
use super::unvoiced_vowel_rules::*;
use super::{Njd, NodeId};

const MAXBUFLEN: usize = 1024;

/// One mora as `get_mora_information` describes it.
#[derive(Clone, Copy)]
struct Mora {
    mora: Option<&'static str>,
    nlink: Option<NodeId>,
    /// -1 unknown, 0 voiced, 1 devoiced.
    flag: i32,
    size: usize,
    midx: i32,
    atype: i32,
}

impl Mora {
    const EMPTY: Mora = Mora {
        mora: None,
        nlink: None,
        flag: -1,
        size: 0,
        midx: 0,
        atype: 0,
    };
}

/// `get_mora_information`: the mora at byte `index` of `node`'s
/// pronunciation (continuing into the following words); `m` carries the
/// caller's mora index and accent, reset at a word that starts a phrase.
fn get_mora_information(njd: &Njd, node: NodeId, index: usize, m: &mut Mora) {
    let (mut node, mut index) = (node, index);
    loop {
        let len = njd.nodes[node].pron().len();
        if index < len {
            break;
        }
        match njd.nodes[node].next {
            Some(next) => {
                index -= len;
                node = next;
            }
            None => {
                *m = Mora::EMPTY;
                return;
            }
        }
    }
    let n = &njd.nodes[node];
    let s = n.pron();
    m.nlink = Some(node);
    if index == 0 && n.chain_flag != 1 {
        m.midx = 0;
        m.atype = n.acc;
    }
    for symbol in [
        NJD_SET_UNVOICED_VOWEL_TOUTEN,
        NJD_SET_UNVOICED_VOWEL_QUESTION,
        NJD_SET_UNVOICED_VOWEL_EXCLAMATION,
    ] {
        if s == symbol {
            m.mora = Some(symbol);
            m.flag = 0;
            m.size = symbol.len();
            return;
        }
    }
    m.mora = None;
    m.flag = -1;
    m.size = 0;
    let rest = s.as_bytes().get(index..).unwrap_or(&[]);
    if let Some((mora, size)) = NJD_SET_UNVOICED_VOWEL_MORA_LIST
        .iter()
        .find_map(|p| strtopcmp(rest, p).filter(|&k| k > 0).map(|k| (*p, k)))
    {
        m.mora = Some(mora);
        m.size = size;
    }
    let after = rest.get(m.size..).unwrap_or(&[]);
    if let Some(k) = strtopcmp(after, NJD_SET_UNVOICED_VOWEL_QUOTATION).filter(|&k| k > 0) {
        m.flag = 1;
        m.size += k;
    }
}

/// `apply_unvoice_rule`: 1 when `current`'s vowel devoices before `next`,
/// 0 when not, -1 when `current` is no candidate.
fn apply_unvoice_rule(current: &str, next: Option<&str>) -> i32 {
    let Some(next) = next else { return 0 };
    for (candidates, nexts) in [
        (
            NJD_SET_UNVOICED_VOWEL_CANDIDATE_LIST1,
            NJD_SET_UNVOICED_VOWEL_NEXT_MORA_LIST1,
        ),
        (
            NJD_SET_UNVOICED_VOWEL_CANDIDATE_LIST2,
            NJD_SET_UNVOICED_VOWEL_NEXT_MORA_LIST2,
        ),
        (
            NJD_SET_UNVOICED_VOWEL_CANDIDATE_LIST3,
            NJD_SET_UNVOICED_VOWEL_NEXT_MORA_LIST3,
        ),
    ] {
        if candidates.contains(&current) {
            let hit = nexts
                .iter()
                .any(|p| strtopcmp(next.as_bytes(), p).is_some_and(|k| k > 0));
            return i32::from(hit);
        }
    }
    -1
}

/// `njd_set_unvoiced_vowel`.
pub fn apply(njd: &mut Njd) {
    let mut m1 = Mora::EMPTY;
    let mut m2 = Mora {
        midx: 1,
        ..Mora::EMPTY
    };
    let mut m3 = Mora {
        midx: 2,
        ..Mora::EMPTY
    };
    let pos_of =
        |njd: &Njd, link: Option<NodeId>| link.map_or("*", |l| njd.nodes[l].pos()).to_owned();
    let pron_of =
        |njd: &Njd, link: Option<NodeId>| link.map_or("*", |l| njd.nodes[l].pron()).to_owned();
    let mut cursor = njd.head;
    while let Some(node) = cursor {
        let len = njd.nodes[node].pron().len();
        if len * 2 >= MAXBUFLEN - 1 {
            cursor = njd.nodes[node].next;
            continue;
        }
        let mut buff = String::new();
        let mut index = 0;
        while index < len {
            if m1.mora.is_none() {
                get_mora_information(njd, node, index, &mut m1);
            }
            let Some(mora1) = m1.mora else {
                // OpenJTalk stops the whole pass at a pronunciation it
                // cannot read as morae.
                return;
            };
            if m2.mora.is_none() {
                m2.midx = m1.midx + 1;
                m2.atype = m1.atype;
                get_mora_information(njd, node, index + m1.size, &mut m2);
            }
            if m3.mora.is_none() {
                m3.midx = m2.midx + 1;
                m3.atype = m2.atype;
                get_mora_information(njd, node, index + m1.size + m2.size, &mut m3);
            }
            let pos2 = pos_of(njd, m2.nlink);
            let is_predicate = |pos: &str, third: &str| {
                pos == NJD_SET_UNVOICED_VOWEL_DOUSHI
                    || pos == NJD_SET_UNVOICED_VOWEL_JODOUSHI
                    || pos == third
            };
            // Rule 1: す of ます and です.
            if let (Some(mora2), Some(_)) = (m2.mora, m3.mora) {
                if m1.nlink == m2.nlink
                    && m2.nlink != m3.nlink
                    && (mora1 == NJD_SET_UNVOICED_VOWEL_MA || mora1 == NJD_SET_UNVOICED_VOWEL_DE)
                    && mora2 == NJD_SET_UNVOICED_VOWEL_SU
                    && is_predicate(&pos2, NJD_SET_UNVOICED_VOWEL_KANDOUSHI)
                {
                    let pron3 = pron_of(njd, m3.nlink);
                    m2.flag = if pron3 == NJD_SET_UNVOICED_VOWEL_QUESTION
                        || pron3 == NJD_SET_UNVOICED_VOWEL_CHOUON
                    {
                        0
                    } else {
                        1
                    };
                }
            }
            // Rule 2: し.
            if let Some(mora2) = m2.mora {
                if m1.flag != 1
                    && m2.flag == -1
                    && m3.flag != 1
                    && pron_of(njd, m2.nlink) == NJD_SET_UNVOICED_VOWEL_SHI
                    && is_predicate(&pos2, NJD_SET_UNVOICED_VOWEL_JOSHI)
                {
                    m2.flag = if m2.atype == m2.midx + 1 {
                        0 // rule 4
                    } else {
                        apply_unvoice_rule(mora2, m3.mora) // rule 5
                    };
                    if m2.flag == 1 {
                        if m1.flag == -1 {
                            m1.flag = 0;
                        }
                        if m3.flag == -1 {
                            m3.flag = 0;
                        }
                    }
                }
            }
            if m1.flag == -1 {
                // Rule 0 (a filler), rule 3 (before a devoiced mora), rule 4
                // (the accent nucleus): voiced; else rule 5.
                let voiced = pos_of(njd, m1.nlink) == NJD_SET_UNVOICED_VOWEL_FILLER
                    || m2.flag == 1
                    || m1.atype == m1.midx + 1;
                m1.flag = if voiced {
                    0
                } else {
                    apply_unvoice_rule(mora1, m2.mora)
                };
            }
            if m1.flag == 1 && m2.flag == -1 {
                m2.flag = 0;
            }
            let quotation = if m1.flag == 1 {
                NJD_SET_UNVOICED_VOWEL_QUOTATION
            } else {
                ""
            };
            if buff.len() + mora1.len() + quotation.len() >= MAXBUFLEN {
                break;
            }
            buff.push_str(mora1);
            buff.push_str(quotation);
            index += m1.size;
            m1 = m2;
            m2 = m3;
            m3 = Mora::EMPTY;
        }
        njd.nodes[node].set_pron(Some(&buff));
        cursor = njd.nodes[node].next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::japanese::njd::Node;

    /// Runs the pass on NJD lines as `NJDNode_fprint` writes them and
    /// returns each word's pronunciation.
    fn prons(lines: &[&str]) -> Vec<String> {
        let mut njd = Njd::default();
        for line in lines {
            let id = njd.alloc(Node::default());
            njd.load(id, line);
            njd.push(id);
        }
        apply(&mut njd);
        njd.ids()
            .map(|id| njd.nodes[id].pron().to_owned())
            .collect()
    }

    // Expected values: the output of the C njd_set_unvoiced_vowel
    // (pyopenjtalk-plus 0.4.1.post9, built with -DCHARSET_UTF_8) on the
    // same lines.

    #[test]
    fn masu_desu_devoice_unless_a_question_follows() {
        let got = prons(&[
            "行き,動詞,自立,*,*,五段・カ行促音便,連用形,行く,イキ,イキ,0/2,*,-1",
            "ます,助動詞,*,*,*,特殊・マス,基本形,ます,マス,マス,1/2,動詞%F4@1,1",
            "か,助詞,副助詞／並立助詞／終助詞,*,*,*,*,か,カ,カ,0/1,動詞%F2@0,1",
            "？,記号,一般,*,*,*,*,？,？,？,0/0,*,0",
        ]);
        assert_eq!(got, ["イキ", "マス’", "カ", "？"]);
        let got = prons(&[
            "そう,副詞,助詞類接続,*,*,*,*,そう,ソウ,ソー,1/2,*,-1",
            "です,助動詞,*,*,*,特殊・デス,基本形,です,デス,デス,1/2,*,1",
            "？,記号,一般,*,*,*,*,？,？,？,0/0,*,0",
        ]);
        assert_eq!(got, ["ソー", "デス", "？"]);
    }

    #[test]
    fn shi_of_a_verb_and_no_two_in_a_row() {
        let got = prons(&[
            "菊池,名詞,固有名詞,人名,姓,*,*,菊池,キクチ,キクチ,2/3,C1,-1",
            "し,動詞,自立,*,*,サ変・スル,連用形,する,シ,シ,0/1,*,0",
            "た,助動詞,*,*,*,特殊・タ,基本形,た,タ,タ,0/1,*,1",
        ]);
        assert_eq!(got, ["キ’クチ", "シ’", "タ"]);
    }

    #[test]
    fn filler_stays_voiced_and_an_unreadable_word_stops_the_pass() {
        let got = prons(&[
            "ふ,フィラー,*,*,*,*,*,ふ,フ,フ,0/1,*,-1",
            "ふくし,名詞,一般,*,*,*,*,ふくし,フクシ,フクシ,2/3,*,0",
            "ａ,名詞,一般,*,*,*,*,ａ,エー,ｴ,0/1,*,0",
            "きた,名詞,一般,*,*,*,*,きた,キタ,キタ,0/2,*,0",
        ]);
        assert_eq!(got, ["フ", "フ’クシ", "ｴ", "キタ"]);
    }
}

//! `njd_set_accent_phrase`: decides, for every word whose dictionary left
//! it open (`chain_flag` -1), whether it joins the previous word's accent
//! phrase, by OpenJTalk's 22 part-of-speech rules (numbered as in the C,
//! later rules overriding earlier ones).

use super::accent_phrase_rules::*;
use super::pronunciation::strtopcmp;
use super::{Njd, Node};

/// `njd_set_accent_phrase`.
pub fn apply(njd: &mut Njd) {
    let Some(head) = njd.head else { return };
    let mut cursor = njd.nodes[head].next;
    while let Some(id) = cursor {
        cursor = njd.nodes[id].next;
        if njd.nodes[id].chain_flag >= 0 {
            continue;
        }
        let Some(prev) = njd.nodes[id].prev else {
            continue;
        };
        let flag = chain_flag(&njd.nodes[prev], &njd.nodes[id]);
        njd.nodes[id].chain_flag = flag;
    }
}

/// Whether `node` joins the accent phrase of `prev`: 1 or 0.
fn chain_flag(prev: &Node, node: &Node) -> i32 {
    let is_renyou =
        |n: &Node| strtopcmp(n.cform().as_bytes(), NJD_SET_ACCENT_PHRASE_RENYOU).is_some();
    // Rule 01
    let mut flag = 1;
    // Rule 02
    if prev.pos() == NJD_SET_ACCENT_PHRASE_MEISHI && node.pos() == NJD_SET_ACCENT_PHRASE_MEISHI {
        flag = 1;
    }
    // Rule 03
    if prev.pos() == NJD_SET_ACCENT_PHRASE_KEIYOUSHI
        && [
            NJD_SET_ACCENT_PHRASE_MEISHI,
            NJD_SET_ACCENT_PHRASE_DOUSHI,
            NJD_SET_ACCENT_PHRASE_KEIYOUSHI,
        ]
        .contains(&node.pos())
    {
        flag = 0;
    }
    // Rule 04 is commented out in OpenJTalk.
    // Rule 05
    if prev.pos() == NJD_SET_ACCENT_PHRASE_DOUSHI
        && (node.pos() == NJD_SET_ACCENT_PHRASE_KEIYOUSHI
            || node.pos() == NJD_SET_ACCENT_PHRASE_MEISHI)
    {
        flag = 0;
    }
    // Rule 06
    let boundary = [
        NJD_SET_ACCENT_PHRASE_FUKUSHI,
        NJD_SET_ACCENT_PHRASE_SETSUZOKUSHI,
        NJD_SET_ACCENT_PHRASE_RENTAISHI,
    ];
    if boundary.contains(&node.pos()) || boundary.contains(&prev.pos()) {
        flag = 0;
    }
    // Rule 07
    if prev.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
        && prev.pos_group1() == NJD_SET_ACCENT_PHRASE_FUKUSHI_KANOU
    {
        flag = 0;
    }
    if node.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
        && node.pos_group1() == NJD_SET_ACCENT_PHRASE_FUKUSHI_KANOU
    {
        flag = 0;
    }
    // Rule 08
    let is_particle = |n: &Node| {
        n.pos() == NJD_SET_ACCENT_PHRASE_JODOUSHI || n.pos() == NJD_SET_ACCENT_PHRASE_JOSHI
    };
    if is_particle(node) {
        flag = 1;
    }
    // Rule 09
    if is_particle(prev) && !is_particle(node) {
        flag = 0;
    }
    // Rule 10
    if prev.pos_group1() == NJD_SET_ACCENT_PHRASE_SETSUBI
        && node.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
    {
        flag = 0;
    }
    // Rule 11
    if node.pos() == NJD_SET_ACCENT_PHRASE_KEIYOUSHI
        && node.pos_group1() == NJD_SET_ACCENT_PHRASE_HIJIRITSU
    {
        if prev.pos() == NJD_SET_ACCENT_PHRASE_DOUSHI
            || prev.pos() == NJD_SET_ACCENT_PHRASE_KEIYOUSHI
        {
            if is_renyou(prev) {
                flag = 1;
            }
        } else if prev.pos() == NJD_SET_ACCENT_PHRASE_JOSHI
            && prev.pos_group1() == NJD_SET_ACCENT_PHRASE_SETSUZOKUJOSHI
            && (prev.string() == NJD_SET_ACCENT_PHRASE_TE
                || prev.string() == NJD_SET_ACCENT_PHRASE_DE)
        {
            flag = 1;
        }
    }
    // Rule 12
    if prev.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
        && (node.pos() == NJD_SET_ACCENT_PHRASE_DOUSHI
            || node.pos() == NJD_SET_ACCENT_PHRASE_KEIYOUSHI
            || node.pos_group1() == NJD_SET_ACCENT_PHRASE_KEIYOUDOUSHI_GOKAN)
    {
        flag = 0;
    }
    // Rule 13
    if node.pos() == NJD_SET_ACCENT_PHRASE_DOUSHI
        && node.pos_group1() == NJD_SET_ACCENT_PHRASE_HIJIRITSU
    {
        if prev.pos() == NJD_SET_ACCENT_PHRASE_DOUSHI {
            if is_renyou(prev) {
                flag = 1;
            }
        } else if prev.pos() == NJD_SET_ACCENT_PHRASE_MEISHI {
            if prev.pos_group1() == NJD_SET_ACCENT_PHRASE_SAHEN_SETSUZOKU
                || prev.pos_group1() == NJD_SET_ACCENT_PHRASE_KEIYOUDOUSHI_GOKAN
            {
                flag = 1;
            }
        } else if prev.pos() == NJD_SET_ACCENT_PHRASE_JOSHI {
            flag = 1;
        }
    }
    // Rule 14
    if node.pos() == NJD_SET_ACCENT_PHRASE_KIGOU || prev.pos() == NJD_SET_ACCENT_PHRASE_KIGOU {
        flag = 0;
    }
    // Rule 15
    if node.pos() == NJD_SET_ACCENT_PHRASE_SETTOUSHI {
        flag = 0;
    }
    // Rule 16
    if prev.pos_group3() == NJD_SET_ACCENT_PHRASE_SEI
        && node.pos_group3() == NJD_SET_ACCENT_PHRASE_MEI
    {
        flag = 0;
    }
    // Rule 17
    if prev.pos() == NJD_SET_ACCENT_PHRASE_MEISHI && node.pos_group3() == NJD_SET_ACCENT_PHRASE_MEI
    {
        flag = 0;
    }
    // Rule 18
    if node.pos_group1() == NJD_SET_ACCENT_PHRASE_SETSUBI {
        flag = 1;
    }
    // Rule 19
    if node.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
        && node.pos_group1() == NJD_SET_ACCENT_PHRASE_HIJIRITSU
        && [
            NJD_SET_ACCENT_PHRASE_JODOUSHI,
            NJD_SET_ACCENT_PHRASE_RENTAISHI,
            NJD_SET_ACCENT_PHRASE_JOSHI,
            NJD_SET_ACCENT_PHRASE_KEIYOUSHI,
            NJD_SET_ACCENT_PHRASE_DOUSHI,
        ]
        .contains(&prev.pos())
    {
        flag = 1;
    }
    // Rule 20
    if node.pos_group1() == NJD_SET_ACCENT_PHRASE_KOYUU_MEISHI {
        flag = 0;
    }
    // Rule 21
    if prev.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
        && (prev.pos_group1() == NJD_SET_ACCENT_PHRASE_HIJIRITSU
            || prev.pos_group1() == NJD_SET_ACCENT_PHRASE_DAIMEISHI)
        && node.pos() == NJD_SET_ACCENT_PHRASE_MEISHI
        && (node.pos_group1() == NJD_SET_ACCENT_PHRASE_IPPAN
            || node.pos_group1() == NJD_SET_ACCENT_PHRASE_SAHEN_SETSUZOKU)
    {
        flag = 0;
    }
    // Rule 22
    if prev.pos() == NJD_SET_ACCENT_PHRASE_KANDOUSHI
        || node.pos() == NJD_SET_ACCENT_PHRASE_KANDOUSHI
    {
        flag = 0;
    }
    flag
}

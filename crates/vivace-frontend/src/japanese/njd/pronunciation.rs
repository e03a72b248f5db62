//! `njd_set_pronunciation`: words the dictionary gives no pronunciation
//! (mora size 0) are read from their kana, or as a known symbol, or become
//! a pause (`、`); runs of kana fillers merge into one word; and three
//! small fixes: ウ after a verb becomes ー, and です/ます before ？ or ！
//! lose their devoicing mark.

use super::pronunciation_rules::*;
use super::{atoi, Njd};

/// The length of `pattern` when `s` starts with it (OpenJTalk's
/// `strtopcmp`).
pub(super) fn strtopcmp(s: &[u8], pattern: &str) -> Option<usize> {
    s.starts_with(pattern.as_bytes()).then_some(pattern.len())
}

/// `njd_set_pronunciation`.
pub fn apply(njd: &mut Njd) {
    let mut cursor = njd.head;
    while let Some(id) = cursor {
        let node = &mut njd.nodes[id];
        if node.mora_size == 0 {
            node.set_read(None);
            node.set_pron(None);
            // A word in kana is read as a filler.
            let string = node.string().to_owned();
            let bytes = string.as_bytes();
            let mut pos = 0;
            while pos < bytes.len() {
                let hit = NJD_SET_PRONUNCIATION_LIST.chunks_exact(3).find_map(|rule| {
                    strtopcmp(&bytes[pos..], rule[0])
                        .filter(|&n| n > 0)
                        .map(|n| (n, rule))
                });
                match hit {
                    Some((n, rule)) => {
                        pos += n;
                        node.add_read(rule[1]);
                        node.add_pron(rule[1]);
                        node.add_mora_size(atoi(rule[2]));
                    }
                    None => pos += 1,
                }
            }
            if node.mora_size != 0 {
                node.set_pos(Some(NJD_SET_PRONUNCIATION_FILLER));
                node.set_pos_group1(None);
                node.set_pos_group2(None);
                node.set_pos_group3(None);
            }
            if node.orig() == "*" {
                node.set_orig(Some(&string));
            }
            // A known symbol has its own pronunciation.
            if node.pron() == "*" {
                if let Some(rule) = NJD_SET_PRONUNCIATION_SYMBOL_LIST
                    .chunks_exact(2)
                    .find(|rule| node.string() == rule[0])
                {
                    node.set_read(Some(rule[1]));
                    node.set_pron(Some(rule[1]));
                }
            }
            // Anything else is a pause.
            if node.pron() == "*" {
                node.set_read(Some(NJD_SET_PRONUNCIATION_TOUTEN));
                node.set_pron(Some(NJD_SET_PRONUNCIATION_TOUTEN));
                node.set_pos(Some(NJD_SET_PRONUNCIATION_KIGOU));
                node.set_pos_group1(Some(NJD_SET_PRONUNCIATION_TOUTEN_POS_GROUP1));
                node.set_pos_group2(Some("*"));
                node.set_pos_group3(Some("*"));
                node.set_ctype(Some("*"));
                node.set_cform(Some("*"));
            }
        }
        cursor = njd.nodes[id].next;
    }
    njd.remove_silent();

    // A run of kana fillers becomes one word.
    let mut head_of_sequence = None;
    let mut cursor = njd.head;
    while let Some(id) = cursor {
        let is_kana_filler = njd.nodes[id].pos() == NJD_SET_PRONUNCIATION_FILLER
            && NJD_SET_PRONUNCIATION_LIST
                .chunks_exact(3)
                .any(|rule| njd.nodes[id].string() == rule[0]);
        if is_kana_filler {
            match head_of_sequence {
                None => head_of_sequence = Some(id),
                Some(head) => {
                    let node = njd.nodes[id].clone();
                    let first = &mut njd.nodes[head];
                    first.add_string(node.string());
                    first.add_orig(node.orig());
                    first.add_read(node.read());
                    first.add_pron(node.pron());
                    first.add_mora_size(node.mora_size);
                    njd.nodes[id].set_pron(None);
                }
            }
        } else {
            head_of_sequence = None;
        }
        cursor = njd.nodes[id].next;
    }
    njd.remove_silent();

    let mut cursor = njd.head;
    while let Some(id) = cursor {
        if let Some(next) = njd.nodes[id].next {
            let (node, following) = (&njd.nodes[id], &njd.nodes[next]);
            if following.pron() == NJD_SET_PRONUNCIATION_U
                && following.pos() == NJD_SET_PRONUNCIATION_JODOUSHI
                && (node.pos() == NJD_SET_PRONUNCIATION_DOUSHI
                    || node.pos() == NJD_SET_PRONUNCIATION_JODOUSHI)
                && node.mora_size > 0
            {
                njd.nodes[next].set_pron(Some(NJD_SET_PRONUNCIATION_CHOUON));
            }
            let (node, following) = (&njd.nodes[id], &njd.nodes[next]);
            if node.pos() == NJD_SET_PRONUNCIATION_JODOUSHI
                && (following.string() == NJD_SET_PRONUNCIATION_QUESTION
                    || following.string() == NJD_SET_PRONUNCIATION_EXCLAMATION)
            {
                if node.string() == NJD_SET_PRONUNCIATION_DESU_STR {
                    njd.nodes[id].set_pron(Some(NJD_SET_PRONUNCIATION_DESU_PRON));
                } else if node.string() == NJD_SET_PRONUNCIATION_MASU_STR {
                    njd.nodes[id].set_pron(Some(NJD_SET_PRONUNCIATION_MASU_PRON));
                }
            }
        }
        cursor = njd.nodes[id].next;
    }
}

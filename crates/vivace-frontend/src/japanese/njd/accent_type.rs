//! `njd_set_accent_type`: each accent phrase's accent nucleus, put on the
//! phrase's first word by the chaining rule of each word that joins it
//! (`C1`…`C5` for nouns, `F1`…`F5` for ancillary words, `P1`/`P2`/`P6`/
//! `P14` for affixes, optionally keyed by the previous word's part of
//! speech: `名詞%F1/動詞%F2@0`), then the accents of spelled-out numbers
//! (十, 百, 千, 万, 億, 兆).

use super::accent_type_rules::*;
use super::{atoi, Njd};

/// The next token of a chaining rule, up to `%`, `@` or `/`, and the
/// delimiter that ended it (`None` at the end).
fn get_token_from_string<'a>(s: &'a str, index: &mut usize) -> (&'a str, Option<u8>) {
    let bytes = s.as_bytes();
    let start = (*index).min(bytes.len());
    let end = bytes[start..]
        .iter()
        .position(|b| matches!(b, b'%' | b'@' | b'/'))
        .map_or(bytes.len(), |p| start + p);
    let delimiter = bytes.get(end).copied();
    *index = if delimiter.is_some() { end + 1 } else { end };
    (s.get(start..end).unwrap_or(""), delimiter)
}

/// The rule that applies after a word of part of speech `prev_pos`, and
/// its added offset (`@n`): `*` and 0 when none does.
fn get_rule<'a>(input_rule: &'a str, prev_pos: &str) -> (&'a str, i32) {
    let mut index = 0;
    let mut c = Some(b' ');
    while c.is_some() {
        let (buff, delimiter) = get_token_from_string(input_rule, &mut index);
        c = delimiter;
        let found = match c {
            Some(b'%') => prev_pos.contains(buff),
            _ => true,
        };
        if found {
            let rule = if c == Some(b'%') {
                let (rule, delimiter) = get_token_from_string(input_rule, &mut index);
                c = delimiter;
                rule
            } else {
                buff
            };
            let add_type = if c == Some(b'@') {
                atoi(get_token_from_string(input_rule, &mut index).0)
            } else {
                0
            };
            return (rule, add_type);
        }
        while matches!(c, Some(b'%' | b'@')) {
            c = get_token_from_string(input_rule, &mut index).1;
        }
    }
    ("*", 0)
}

/// `njd_set_accent_type`.
pub fn apply(njd: &mut Njd) {
    let Some(head) = njd.head else { return };
    let mut top_node = head;
    let mut mora_size = 0;
    let mut top_acc = 0;
    let mut top_mora_size = 0;
    let mut cursor = Some(head);
    while let Some(id) = cursor {
        let prev = njd.nodes[id].prev;
        let chain_flag = njd.nodes[id].chain_flag;
        if id == head || chain_flag != 1 {
            top_node = id;
            mora_size = 0;
            top_acc = njd.nodes[id].acc;
            top_mora_size = njd.nodes[id].mora_size;
        } else if let Some(prev) = prev {
            let chain_rule = njd.nodes[id].chain_rule().to_owned();
            let (rule, add_type) = get_rule(&chain_rule, njd.nodes[prev].pos());
            let acc = njd.nodes[id].acc;
            let top = &mut njd.nodes[top_node];
            if top.chain_rule() == "P2" && top_acc != 0 && top_mora_size > top_acc {
                top.set_acc(top_acc);
            } else {
                match rule {
                    "F2" if top.acc == 0 => top.set_acc(mora_size + add_type),
                    "F3" if top.acc != 0 => top.set_acc(mora_size + add_type),
                    "F4" => top.set_acc(mora_size + add_type),
                    "F5" | "C4" | "P6" => top.set_acc(0),
                    "C1" => top.set_acc(mora_size + acc),
                    "C2" => top.set_acc(mora_size + 1),
                    "C3" => top.set_acc(mora_size),
                    "P1" if acc == 0 => top.set_acc(0),
                    "P1" => top.set_acc(mora_size + acc),
                    "P14" if acc != 0 => top.set_acc(mora_size + acc),
                    // `*`, F1, C5 and anything else: no change.
                    _ => {}
                }
            }
        }
        if let Some(prev) = prev {
            if chain_flag == 1
                && njd.nodes[prev].pos_group1() == NJD_SET_ACCENT_TYPE_KAZU
                && njd.nodes[id].pos_group1() == NJD_SET_ACCENT_TYPE_KAZU
            {
                if let Some(acc) = digit_accent(njd, id, prev) {
                    njd.nodes[prev].set_acc(acc);
                }
            }
        }
        let node = &njd.nodes[id];
        if node.string() == NJD_SET_ACCENT_TYPE_JYUU
            && node.chain_flag != 1
            && node
                .next
                .is_some_and(|n| njd.nodes[n].pos_group1() == NJD_SET_ACCENT_TYPE_KAZU)
        {
            njd.nodes[id].set_acc(0);
        }
        mora_size += njd.nodes[id].mora_size;
        cursor = njd.nodes[id].next;
    }
}

/// The accent of the number before a power of ten (`node`), when the
/// power of ten sets one.
fn digit_accent(njd: &Njd, id: usize, prev: usize) -> Option<i32> {
    let (node, before) = (&njd.nodes[id], &njd.nodes[prev]);
    let before_is = |names: &[&str]| names.contains(&before.string());
    match node.string() {
        NJD_SET_ACCENT_TYPE_JYUU => {
            let after_is_digit = node.next.is_some_and(|n| {
                [
                    NJD_SET_ACCENT_TYPE_ICHI,
                    NJD_SET_ACCENT_TYPE_NI,
                    NJD_SET_ACCENT_TYPE_SAN,
                    NJD_SET_ACCENT_TYPE_YON,
                    NJD_SET_ACCENT_TYPE_GO,
                    NJD_SET_ACCENT_TYPE_ROKU,
                    NJD_SET_ACCENT_TYPE_NANA,
                    NJD_SET_ACCENT_TYPE_HACHI,
                    NJD_SET_ACCENT_TYPE_KYUU,
                ]
                .contains(&njd.nodes[n].string())
            });
            if before_is(&[
                NJD_SET_ACCENT_TYPE_GO,
                NJD_SET_ACCENT_TYPE_ROKU,
                NJD_SET_ACCENT_TYPE_HACHI,
            ]) && after_is_digit
            {
                Some(0)
            } else {
                // OpenJTalk sets 1 whether or not the digit is 三, 四, 九, 何 or 数.
                Some(1)
            }
        }
        NJD_SET_ACCENT_TYPE_HYAKU => Some(if before_is(&[NJD_SET_ACCENT_TYPE_NANA]) {
            2
        } else if before_is(&[
            NJD_SET_ACCENT_TYPE_SAN,
            NJD_SET_ACCENT_TYPE_YON,
            NJD_SET_ACCENT_TYPE_KYUU,
            NJD_SET_ACCENT_TYPE_NAN,
        ]) {
            1
        } else {
            before.mora_size + node.mora_size
        }),
        NJD_SET_ACCENT_TYPE_SEN | NJD_SET_ACCENT_TYPE_MAN => Some(before.mora_size + 1),
        NJD_SET_ACCENT_TYPE_OKU => Some(
            if before_is(&[
                NJD_SET_ACCENT_TYPE_ICHI,
                NJD_SET_ACCENT_TYPE_ROKU,
                NJD_SET_ACCENT_TYPE_NANA,
                NJD_SET_ACCENT_TYPE_HACHI,
                NJD_SET_ACCENT_TYPE_IKU,
            ]) {
                2
            } else {
                1
            },
        ),
        NJD_SET_ACCENT_TYPE_CHOU => Some(
            if before_is(&[NJD_SET_ACCENT_TYPE_ROKU, NJD_SET_ACCENT_TYPE_NANA]) {
                2
            } else {
                1
            },
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::get_rule;

    #[test]
    fn rules_are_chosen_by_the_previous_part_of_speech() {
        let rule = "名詞%F1/動詞%F2@0/形容詞%F2@1";
        assert_eq!(get_rule(rule, "名詞"), ("F1", 0));
        assert_eq!(get_rule(rule, "形容詞"), ("F2", 1));
        assert_eq!(get_rule(rule, "助詞"), ("*", 0));
        assert_eq!(get_rule("C3", "名詞"), ("C3", 0));
        assert_eq!(get_rule("F2@1", "名詞"), ("F2", 1));
    }
}

//! `njd_set_digit`: runs of digits become numbers read as numbers (with
//! 万/億/兆… places, commas as thousands separators, a period as 点) or
//! digit by digit (phone numbers, codes), chosen by the commas and a score
//! of the neighbouring words; then counters change the digits' readings
//! and their own (一本 イッポン, 三本 サンボン), with the special days (一日
//! ツイタチ, 二十日 ハツカ) and people (一人 ヒトリ).
//!
//! A port of pyopenjtalk-plus 0.4.1.post9's `njd_set_digit.c` over the
//! arena list; its recursion over a digit run is a loop here.

use super::digit_rules::*;
use super::pronunciation::strtopcmp;
use super::{atoi, Njd, NodeId, NO_DATA};

fn string(njd: &Njd, id: NodeId) -> &str {
    njd.nodes[id].string()
}

fn group1(njd: &Njd, id: NodeId) -> &str {
    njd.nodes[id].pos_group1()
}

fn group2(njd: &Njd, id: NodeId) -> &str {
    njd.nodes[id].pos_group2()
}

/// `get_digit`: the digit a number word stands for (-1 if none),
/// rewriting its surface to the kanji digit when `convert`.
fn get_digit(njd: &mut Njd, id: NodeId, convert: bool) -> i32 {
    if string(njd, id) == NO_DATA || group1(njd, id) != NJD_SET_DIGIT_KAZU {
        return -1;
    }
    let Some(rule) = NJD_SET_DIGIT_RULE_NUMERAL_LIST1
        .chunks_exact(3)
        .find(|r| r[0] == string(njd, id))
    else {
        return -1;
    };
    if convert {
        njd.nodes[id].set_string(Some(rule[2]));
        njd.nodes[id].set_orig(Some(rule[2]));
    }
    atoi(rule[1])
}

fn is_period(s: &str) -> bool {
    s == NJD_SET_DIGIT_TEN1 || s == NJD_SET_DIGIT_TEN2
}

fn is_comma(s: &str) -> bool {
    s == NJD_SET_DIGIT_COMMA
}

fn is_hyphen(s: &str) -> bool {
    [
        NJD_SET_DIGIT_HAIHUN1,
        NJD_SET_DIGIT_HAIHUN2,
        NJD_SET_DIGIT_HAIHUN3,
        NJD_SET_DIGIT_HAIHUN4,
        NJD_SET_DIGIT_HAIHUN5,
    ]
    .contains(&s)
}

/// `get_digit_sequence_score`: evidence from the neighbours that the run
/// from `start` to `end` is a number (≥ 0) rather than a code.
fn get_digit_sequence_score(njd: &Njd, start: NodeId, end: NodeId) -> i32 {
    let mut score = 0;
    if let Some(prev) = njd.nodes[start].prev {
        let (g1, g2, s) = (group1(njd, prev), group2(njd, prev), string(njd, prev));
        let prev_prev = njd.nodes[prev].prev;
        let prev_prev_is_number = prev_prev.is_some_and(|p| group1(njd, p) == NJD_SET_DIGIT_KAZU);
        if g1 == NJD_SET_DIGIT_SUUSETSUZOKU {
            score += 2;
        }
        if g2 == NJD_SET_DIGIT_JOSUUSHI || g1 == NJD_SET_DIGIT_FUKUSHIKANOU {
            score += 1;
        }
        if is_period(s) {
            if prev_prev_is_number {
                score -= 5;
            }
        } else if is_hyphen(s) {
            score -= 2;
        } else if s == NJD_SET_DIGIT_KAKKO1 {
            if prev_prev_is_number {
                score -= 2;
            }
        } else if s == NJD_SET_DIGIT_KAKKO2 || s == NJD_SET_DIGIT_BANGOU {
            score -= 2;
        }
        if prev_prev.is_some_and(|p| string(njd, p) == NJD_SET_DIGIT_BANGOU) {
            score -= 2;
        }
    }
    if let Some(next) = njd.nodes[end].next {
        let (g1, g2, s) = (group1(njd, next), group2(njd, next), string(njd, next));
        if g2 == NJD_SET_DIGIT_JOSUUSHI || g1 == NJD_SET_DIGIT_FUKUSHIKANOU {
            score += 2;
        }
        if is_hyphen(s) || s == NJD_SET_DIGIT_KAKKO1 {
            score -= 2;
        } else if s == NJD_SET_DIGIT_KAKKO2 {
            if njd.nodes[next]
                .next
                .is_some_and(|n| group1(njd, n) == NJD_SET_DIGIT_KAZU)
            {
                score -= 2;
            }
        } else if s == NJD_SET_DIGIT_BANGOU {
            score -= 2;
        } else if is_period(s) {
            score += 4;
        }
    }
    score
}

/// The nodes from `start` while not past `end` (OpenJTalk's `node !=
/// end->next`, re-read at each step).
fn run_len(njd: &Njd, start: NodeId, end: NodeId) -> usize {
    let mut size = 0;
    let mut node = Some(start);
    while let Some(id) = node {
        if Some(id) == njd.nodes[end].next {
            break;
        }
        size += 1;
        node = njd.nodes[id].next;
    }
    size
}

/// `convert_digit_sequence_for_non_numerical_reading`: digit by digit, in
/// pairs of accent phrases (ゼロ, ニー, ゴー for 0, 2, 5).
fn convert_digit_sequence_for_non_numerical_reading(njd: &mut Njd, start: NodeId, end: NodeId) {
    if run_len(njd, start, end) <= 1 {
        return;
    }
    let mut size = 0;
    let mut node = Some(start);
    while let Some(id) = node {
        if Some(id) == njd.nodes[end].next {
            break;
        }
        let s = string(njd, id).to_owned();
        let n = &mut njd.nodes[id];
        if s == NJD_SET_DIGIT_ZERO1 || s == NJD_SET_DIGIT_ZERO2 {
            n.set_pron(Some(NJD_SET_DIGIT_ZERO_AFTER_DP));
            n.set_mora_size(2);
        } else if s == NJD_SET_DIGIT_TWO {
            n.set_pron(Some(NJD_SET_DIGIT_TWO_AFTER_DP));
            n.set_mora_size(2);
        } else if s == NJD_SET_DIGIT_FIVE {
            n.set_pron(Some(NJD_SET_DIGIT_FIVE_AFTER_DP));
            n.set_mora_size(2);
        }
        n.set_chain_rule(None);
        if size % 2 == 0 {
            n.chain_flag = 0;
        } else {
            n.chain_flag = 1;
            if let Some(prev) = n.prev {
                njd.nodes[prev].set_acc(3);
            }
        }
        size += 1;
        node = njd.nodes[id].next;
    }
}

/// Loads a dictionary line into a new node and links it after `node`;
/// returns the new node (OpenJTalk's insert-or-append).
fn insert_loaded(njd: &mut Njd, node: NodeId, line: &str) -> NodeId {
    let new = njd.alloc(super::Node::default());
    njd.load(new, line);
    match njd.nodes[node].next {
        None => {
            njd.nodes[node].next = Some(new);
            njd.nodes[new].prev = Some(node);
            new
        }
        Some(next) => njd.insert(node, Some(next), new),
    }
}

/// `convert_digit_sequence_for_numerical_reading`: a run of digits read as
/// a number, with 十/百/千 inside each group of four and 万/億/兆… between
/// groups; zeros fall silent.
fn convert_digit_sequence_for_numerical_reading(njd: &mut Njd, start: NodeId, end: NodeId) {
    let size = run_len(njd, start, end);
    if size <= 1 {
        return;
    }
    let mut index = size % 4;
    if index == 0 {
        index = 4;
    }
    let mut place = if size > index { (size - index) / 4 } else { 0 };
    let mut index = index as i64 - 1;
    if place > 17 {
        return;
    }
    let mut have = false;
    let mut node = Some(start);
    while let Some(mut id) = node {
        if Some(id) == njd.nodes[end].next {
            break;
        }
        let digit = get_digit(njd, id, false);
        if index == 0 {
            if digit == 0 {
                let n = &mut njd.nodes[id];
                n.set_pron(None);
                n.set_acc(0);
                n.set_mora_size(0);
            } else {
                have = true;
            }
            if have {
                if place > 0 {
                    if let Some(line) = NJD_SET_DIGIT_RULE_NUMERAL_LIST3.get(place) {
                        id = insert_loaded(njd, id, line);
                    }
                }
                have = false;
            }
            place = place.saturating_sub(1);
        } else if digit <= 0 {
            let n = &mut njd.nodes[id];
            n.set_pron(None);
            n.set_acc(0);
            n.set_mora_size(0);
        } else {
            let line = NJD_SET_DIGIT_RULE_NUMERAL_LIST2
                .get(index as usize)
                .copied()
                .unwrap_or("");
            if digit == 1 {
                njd.load(id, line);
            } else {
                id = insert_loaded(njd, id, line);
            }
            have = true;
        }
        index -= 1;
        if index < 0 {
            index = 3;
        }
        node = njd.nodes[id].next;
    }
}

fn repair_tail(njd: &mut Njd) {
    if let Some(mut tail) = njd.tail {
        while let Some(next) = njd.nodes[tail].next {
            tail = next;
        }
        njd.tail = Some(tail);
    }
}

/// `convert_digit_sequence`: the run from `s` to `e`, piece by piece
/// (OpenJTalk recurses on what follows each piece; this loops).
fn convert_digit_sequence(njd: &mut Njd, s: NodeId, e: NodeId) {
    let mut s = s;
    loop {
        // Skip leading commas and periods.
        if is_comma(string(njd, s)) || is_period(string(njd, s)) {
            if s == e {
                return;
            }
            match njd.nodes[s].next {
                Some(next) => {
                    s = next;
                    continue;
                }
                None => return,
            }
        }
        // The last digit before a period.
        let mut final_digit = s;
        while let Some(next) = njd.nodes[final_digit].next {
            if final_digit == e || is_period(string(njd, next)) {
                break;
            }
            final_digit = next;
        }
        while let Some(prev) = njd.nodes[final_digit].prev {
            if final_digit == s || !is_comma(string(njd, final_digit)) {
                break;
            }
            final_digit = prev;
        }
        // Commas every three digits make a number.
        let mut numerical = 1;
        let mut commas = 0;
        let mut first_comma = None;
        let mut node = final_digit;
        let mut rindex = 0;
        loop {
            if is_comma(string(njd, node)) {
                first_comma = Some(node);
                commas += 1;
                if numerical == 1 && rindex % 4 != 3 {
                    numerical = 0;
                }
            } else if numerical == 1 && rindex % 4 == 3 {
                numerical = 0;
            }
            if node == s {
                break;
            }
            match njd.nodes[node].prev {
                Some(prev) => node = prev,
                None => break,
            }
            rindex += 1;
        }
        if s != final_digit && get_digit(njd, s, false) == 0 {
            numerical = -1;
        }
        if numerical == 1 && commas == 0 {
            numerical = 0;
        }
        let last = if numerical == 1 {
            if commas > 0 {
                let mut node = Some(s);
                while let Some(id) = node {
                    if id == final_digit {
                        break;
                    }
                    node = if is_comma(string(njd, id)) {
                        njd.remove(id)
                    } else {
                        njd.nodes[id].next
                    };
                }
            }
            convert_digit_sequence_for_numerical_reading(njd, s, final_digit);
            repair_tail(njd);
            final_digit
        } else {
            let final_digit = match first_comma.and_then(|c| njd.nodes[c].prev) {
                Some(prev) if first_comma.is_some() => prev,
                _ => final_digit,
            };
            if numerical == 0 {
                numerical = if get_digit_sequence_score(njd, s, final_digit) >= 0 {
                    1
                } else {
                    -1
                };
            }
            if numerical == 1 {
                convert_digit_sequence_for_numerical_reading(njd, s, final_digit);
                repair_tail(njd);
            } else {
                convert_digit_sequence_for_non_numerical_reading(njd, s, final_digit);
            }
            final_digit
        };
        if last == e {
            return;
        }
        match njd.nodes[last].next {
            Some(next) => s = next,
            None => return,
        }
    }
}

/// `search_numerative_class`: whether the word is in the list.
fn in_class(list: &[&str], njd: &Njd, id: NodeId) -> bool {
    let s = string(njd, id);
    s != NO_DATA && list.contains(&s)
}

/// `convert_digit_pron`: the digit's pronunciation, accent and morae for
/// this counter class.
fn convert_digit_pron(list: &[&str], njd: &mut Njd, id: NodeId) {
    let s = string(njd, id);
    if s == NO_DATA {
        return;
    }
    if let Some(rule) = list.chunks_exact(4).find(|r| r[0] == s) {
        let n = &mut njd.nodes[id];
        n.set_pron(Some(rule[1]));
        n.set_acc(atoi(rule[2]));
        n.set_mora_size(atoi(rule[3]));
    }
}

/// `convert_numerative_pron`: the counter's first mora voiced (type 1) or
/// semi-voiced (type 2) after this digit.
fn convert_numerative_pron(list: &[&str], njd: &mut Njd, digit: NodeId, counter: NodeId) {
    let s = string(njd, digit);
    if s == NO_DATA {
        return;
    }
    let kind = list
        .chunks_exact(2)
        .find(|r| r[0] == s)
        .map_or(0, |r| atoi(r[1]));
    let symbols = match kind {
        1 => NJD_SET_DIGIT_RULE_VOICED_SOUND_SYMBOL_LIST,
        2 => NJD_SET_DIGIT_RULE_SEMIVOICED_SOUND_SYMBOL_LIST,
        _ => return,
    };
    for rule in symbols.chunks_exact(2) {
        let pron = njd.nodes[counter].pron().to_owned();
        if let Some(j) = strtopcmp(pron.as_bytes(), rule[0]) {
            let rest = pron.get(j..).unwrap_or("");
            let new = format!("{}{rest}", rule[1]);
            njd.nodes[counter].set_pron(Some(&new));
            break;
        }
    }
}

const DIGIT_PRON_CLASSES: [(&[&str], &[&str]); 11] = [
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1B,
        NJD_SET_DIGIT_RULE_CONV_TABLE1B,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1C1,
        NJD_SET_DIGIT_RULE_CONV_TABLE1C1,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1C2,
        NJD_SET_DIGIT_RULE_CONV_TABLE1C2,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1D,
        NJD_SET_DIGIT_RULE_CONV_TABLE1D,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1E,
        NJD_SET_DIGIT_RULE_CONV_TABLE1E,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1F,
        NJD_SET_DIGIT_RULE_CONV_TABLE1F,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1G,
        NJD_SET_DIGIT_RULE_CONV_TABLE1G,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1H,
        NJD_SET_DIGIT_RULE_CONV_TABLE1H,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1I,
        NJD_SET_DIGIT_RULE_CONV_TABLE1I,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1J,
        NJD_SET_DIGIT_RULE_CONV_TABLE1J,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS1K,
        NJD_SET_DIGIT_RULE_CONV_TABLE1K,
    ),
];

const COUNTER_PRON_CLASSES: [(&[&str], &[&str]); 5] = [
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS2B,
        NJD_SET_DIGIT_RULE_CONV_TABLE2B,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS2C,
        NJD_SET_DIGIT_RULE_CONV_TABLE2C,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS2D,
        NJD_SET_DIGIT_RULE_CONV_TABLE2D,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS2E,
        NJD_SET_DIGIT_RULE_CONV_TABLE2E,
    ),
    (
        NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS2F,
        NJD_SET_DIGIT_RULE_CONV_TABLE2F,
    ),
];

/// `njd_set_digit`.
pub fn apply(njd: &mut Njd) {
    // Digit runs.
    let (mut s, mut e): (Option<NodeId>, Option<NodeId>) = (None, None);
    let mut find = false;
    let mut cursor = njd.head;
    while let Some(node) = cursor {
        if group1(njd, node) == NJD_SET_DIGIT_KAZU {
            find = true;
        }
        let is_digit = get_digit(njd, node, true) >= 0
            || (group1(njd, node) == NJD_SET_DIGIT_KAZU
                && (is_period(string(njd, node)) || is_comma(string(njd, node))));
        if is_digit {
            if s.is_none() {
                s = Some(node);
            }
            if Some(node) == njd.tail {
                e = Some(node);
            }
        } else if s.is_some() {
            e = njd.nodes[node].prev;
        }
        if let (Some(start), Some(end)) = (s, e) {
            convert_digit_sequence(njd, start, end);
            s = None;
            e = None;
        }
        cursor = njd.nodes[node].next;
    }
    if !find {
        return;
    }
    njd.remove_silent();
    let Some(head) = njd.head else { return };

    // A period between numbers is 点.
    let mut cursor = njd.nodes[head].next;
    while let Some(node) = cursor {
        let (Some(prev), Some(next)) = (njd.nodes[node].prev, njd.nodes[node].next) else {
            break;
        };
        if string(njd, node) != NO_DATA
            && string(njd, prev) != NO_DATA
            && is_period(string(njd, node))
            && group1(njd, prev) == NJD_SET_DIGIT_KAZU
            && group1(njd, next) == NJD_SET_DIGIT_KAZU
        {
            njd.load(node, NJD_SET_DIGIT_TEN_FEATURE);
            njd.nodes[node].chain_flag = 1;
            let before = string(njd, prev).to_owned();
            let p = &mut njd.nodes[prev];
            if before == NJD_SET_DIGIT_ZERO1 || before == NJD_SET_DIGIT_ZERO2 {
                p.set_pron(Some(NJD_SET_DIGIT_ZERO_BEFORE_DP));
                p.set_mora_size(2);
            } else if before == NJD_SET_DIGIT_TWO {
                p.set_pron(Some(NJD_SET_DIGIT_TWO_BEFORE_DP));
                p.set_mora_size(2);
            } else if before == NJD_SET_DIGIT_FIVE {
                p.set_pron(Some(NJD_SET_DIGIT_FIVE_BEFORE_DP));
                p.set_mora_size(2);
            } else if before == NJD_SET_DIGIT_SIX {
                p.set_acc(1);
            }
            // Skip the digits after the point.
            let mut after = njd.nodes[node].next;
            while let Some(a) = after {
                if njd.nodes[a].pos() != NJD_SET_DIGIT_MEISHI {
                    break;
                }
                after = njd.nodes[a].next;
            }
            cursor = after.and_then(|a| njd.nodes[a].next);
        } else {
            cursor = njd.nodes[node].next;
        }
    }

    // Counters after a number.
    let mut cursor = njd.head.and_then(|h| njd.nodes[h].next);
    while let Some(node) = cursor {
        if let Some(prev) = njd.nodes[node].prev {
            if group1(njd, prev) == NJD_SET_DIGIT_KAZU
                && (group2(njd, node) == NJD_SET_DIGIT_JOSUUSHI
                    || group1(njd, node) == NJD_SET_DIGIT_FUKUSHIKANOU)
            {
                if let Some((_, table)) = DIGIT_PRON_CLASSES
                    .iter()
                    .find(|(class, _)| in_class(class, njd, node))
                {
                    convert_digit_pron(table, njd, prev);
                }
                if let Some((_, table)) = COUNTER_PRON_CLASSES
                    .iter()
                    .find(|(class, _)| in_class(class, njd, node))
                {
                    convert_numerative_pron(table, njd, prev, node);
                }
                njd.nodes[prev].chain_flag = 0;
                njd.nodes[node].chain_flag = 1;
            }
        }
        cursor = njd.nodes[node].next;
    }

    // Numbers followed by numbers.
    let mut cursor = njd.head.and_then(|h| njd.nodes[h].next);
    while let Some(node) = cursor {
        if let Some(prev) = njd.nodes[node].prev {
            if group1(njd, prev) == NJD_SET_DIGIT_KAZU {
                if group1(njd, node) == NJD_SET_DIGIT_KAZU {
                    let (before, here) =
                        (string(njd, prev).to_owned(), string(njd, node).to_owned());
                    let list4 = NJD_SET_DIGIT_RULE_NUMERAL_LIST4;
                    let list5 = NJD_SET_DIGIT_RULE_NUMERAL_LIST5;
                    let mut found = false;
                    if list4.contains(&before.as_str()) && list5.contains(&here.as_str()) {
                        njd.nodes[prev].chain_flag = 0;
                        njd.nodes[node].chain_flag = 1;
                        found = true;
                    }
                    if !found && list5.contains(&before.as_str()) && list4.contains(&here.as_str())
                    {
                        njd.nodes[node].chain_flag = 0;
                    }
                }
                if in_class(NJD_SET_DIGIT_RULE_NUMERAL_LIST8, njd, node) {
                    convert_digit_pron(NJD_SET_DIGIT_RULE_NUMERAL_LIST9, njd, prev);
                }
                if in_class(NJD_SET_DIGIT_RULE_NUMERAL_LIST10, njd, node) {
                    convert_digit_pron(NJD_SET_DIGIT_RULE_NUMERAL_LIST11, njd, prev);
                }
                if in_class(NJD_SET_DIGIT_RULE_NUMERAL_LIST6, njd, node) {
                    convert_numerative_pron(NJD_SET_DIGIT_RULE_NUMERAL_LIST7, njd, prev, node);
                }
            }
        }
        cursor = njd.nodes[node].next;
    }

    // Readings of a number with its counter: class 3, people, days.
    let mut cursor = njd.head;
    while let Some(node) = cursor {
        let prev = njd.nodes[node].prev;
        if let Some(next) = njd.nodes[node].next {
            let starts_number = prev.is_none_or(|p| {
                njd.nodes[p].pos() == NJD_SET_DIGIT_KIGOU || group1(njd, p) != NJD_SET_DIGIT_KAZU
            });
            if string(njd, next) != NO_DATA
                && group1(njd, node) == NJD_SET_DIGIT_KAZU
                && starts_number
                && (group2(njd, next) == NJD_SET_DIGIT_JOSUUSHI
                    || group1(njd, next) == NJD_SET_DIGIT_FUKUSHIKANOU)
            {
                convert_class3(njd, node, next);
                let (here, counter) = (string(njd, node).to_owned(), string(njd, next).to_owned());
                if counter == NJD_SET_DIGIT_NIN {
                    if let Some(r) = NJD_SET_DIGIT_RULE_CONV_TABLE4
                        .chunks_exact(2)
                        .find(|r| r[0] == here)
                    {
                        njd.load(node, r[1]);
                        njd.nodes[next].set_pron(None);
                    }
                }
                if counter == NJD_SET_DIGIT_NICHI && here != NO_DATA {
                    let after_month =
                        prev.is_some_and(|p| string(njd, p).contains(NJD_SET_DIGIT_GATSU));
                    if after_month && here == NJD_SET_DIGIT_ONE {
                        njd.load(node, NJD_SET_DIGIT_TSUITACHI);
                        njd.nodes[next].set_pron(None);
                    } else if let Some(r) = NJD_SET_DIGIT_RULE_CONV_TABLE5
                        .chunks_exact(2)
                        .find(|r| r[0] == here)
                    {
                        njd.load(node, r[1]);
                        njd.nodes[next].set_pron(None);
                    }
                } else if counter == NJD_SET_DIGIT_NICHIKAN {
                    if let Some(r) = NJD_SET_DIGIT_RULE_CONV_TABLE6
                        .chunks_exact(2)
                        .find(|r| r[0] == here)
                    {
                        njd.load(node, r[1]);
                        njd.nodes[next].set_pron(None);
                    }
                }
            }
        }
        cursor = njd.nodes[node].next;
    }

    // 十四日, 二十日, 二十四日 (and their 日間).
    let mut cursor = njd.head;
    while let Some(node) = cursor {
        let starts = njd.nodes[node]
            .prev
            .is_none_or(|p| group1(njd, p) != NJD_SET_DIGIT_KAZU);
        if let (true, Some(n1)) = (starts, njd.nodes[node].next) {
            if let Some(n2) = njd.nodes[n1].next {
                let (s0, s1, s2) = (string(njd, node), string(njd, n1), string(njd, n2));
                let silence = |njd: &mut Njd, ids: &[NodeId]| {
                    for &id in ids {
                        njd.nodes[id].set_pron(None);
                    }
                };
                if s0 == NJD_SET_DIGIT_TEN && s1 == NJD_SET_DIGIT_FOUR {
                    if s2 == NJD_SET_DIGIT_NICHI {
                        njd.load(node, NJD_SET_DIGIT_JUYOKKA);
                        silence(njd, &[n1, n2]);
                    } else if s2 == NJD_SET_DIGIT_NICHIKAN {
                        njd.load(node, NJD_SET_DIGIT_JUYOKKAKAN);
                        silence(njd, &[n1, n2]);
                    }
                } else if s0 == NJD_SET_DIGIT_TWO && s1 == NJD_SET_DIGIT_TEN {
                    if s2 == NJD_SET_DIGIT_NICHI {
                        njd.load(node, NJD_SET_DITIT_HATSUKA);
                        silence(njd, &[n1, n2]);
                    } else if s2 == NJD_SET_DIGIT_NICHIKAN {
                        njd.load(node, NJD_SET_DIGIT_HATSUKAKAN);
                        silence(njd, &[n1, n2]);
                    } else if s2 == NJD_SET_DIGIT_FOUR {
                        if let Some(n3) = njd.nodes[n2].next {
                            let s3 = string(njd, n3).to_owned();
                            if s3 == NJD_SET_DIGIT_NICHI {
                                njd.load(node, NJD_SET_DIGIT_NIJU);
                                njd.load(n1, NJD_SET_DITIT_YOKKA);
                                silence(njd, &[n2, n3]);
                            } else if s3 == NJD_SET_DIGIT_NICHIKAN {
                                njd.load(node, NJD_SET_DIGIT_NIJU);
                                njd.load(n1, NJD_SET_DIGIT_YOKKAKAN);
                                silence(njd, &[n2, n3]);
                            }
                        }
                    }
                }
            }
        }
        cursor = njd.nodes[node].next;
    }
    njd.remove_silent();
}

/// The class-3 counters (a counter by surface and reading) give the digit
/// before them its own reading.
fn convert_class3(njd: &mut Njd, node: NodeId, next: NodeId) {
    let (counter, read) = (string(njd, next), njd.nodes[next].read());
    if NJD_SET_DIGIT_RULE_NUMERATIVE_CLASS3
        .chunks_exact(2)
        .any(|r| r[0] == counter && r[1] == read)
    {
        let here = string(njd, node);
        if let Some(r) = NJD_SET_DIGIT_RULE_CONV_TABLE3
            .chunks_exact(4)
            .find(|r| r[0] == here)
        {
            let n = &mut njd.nodes[node];
            n.set_read(Some(r[1]));
            n.set_pron(Some(r[1]));
            n.set_acc(atoi(r[2]));
            n.set_mora_size(atoi(r[3]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{pronunciation, Njd};

    /// MeCab's features through pronunciation and this pass, printed as
    /// `NJDNode_fprint` prints them.
    fn digit_pass(mecab: &[&str]) -> Vec<String> {
        let features: Vec<String> = mecab.iter().map(|s| (*s).to_owned()).collect();
        let mut njd = Njd::from_mecab(&features);
        pronunciation::apply(&mut njd);
        super::apply(&mut njd);
        njd.features().iter().map(|f| f.to_string()).collect()
    }

    // Inputs: pyopenjtalk-plus 0.4.1.post9 `run_mecab`; expectations: its
    // C `mecab2njd` + `njd_set_pronunciation` + `njd_set_digit`, printed
    // with `NJD_print`.

    #[test]
    fn digits_read_as_a_number() {
        let got = digit_pass(&[
            "１,名詞,数,*,*,*,*,１,イチ,イチ,2/2,C3",
            "２,名詞,数,*,*,*,*,２,ニ,ニ,1/1,C3",
            "３,名詞,数,*,*,*,*,３,サン,サン,0/2,C3",
        ]);
        assert_eq!(
            got,
            [
                "百,名詞,数,*,*,*,*,百,ヒャク,ヒャク,2/2,*,-1",
                "二,名詞,数,*,*,*,*,二,ニ,ニ,1/1,C3,0",
                "十,名詞,数,*,*,*,*,十,ジュウ,ジュー,1/2,*,1",
                "三,名詞,数,*,*,*,*,三,サン,サン,0/2,C3,0",
            ]
        );
    }

    #[test]
    fn a_decimal_point_is_ten() {
        let got = digit_pass(&[
            "３,名詞,数,*,*,*,*,３,サン,サン,0/2,C3",
            "．,名詞,数,*,*,*,*,．,．,．,*/*,*",
            "１,名詞,数,*,*,*,*,１,イチ,イチ,2/2,C3",
            "４,名詞,数,*,*,*,*,４,ヨン,ヨン,1/2,C1",
        ]);
        assert_eq!(
            got,
            [
                "三,名詞,数,*,*,*,*,三,サン,サン,0/2,C3,0",
                "．,名詞,接尾,助数詞,*,*,*,．,テン,テン,0/2,*,1",
                "一,名詞,数,*,*,*,*,一,イチ,イチ,3/2,*,0",
                "四,名詞,数,*,*,*,*,四,ヨン,ヨン,1/2,*,1",
            ]
        );
    }

    #[test]
    fn a_phone_number_is_read_digit_by_digit() {
        let got = digit_pass(&[
            "０,名詞,数,*,*,*,*,０,ゼロ,ゼロ,1/2,C1",
            "３,名詞,数,*,*,*,*,３,サン,サン,0/2,C3",
            "−,記号,一般,*,*,*,*,−,−,−,*/*,*",
            "１,名詞,数,*,*,*,*,１,イチ,イチ,2/2,C3",
            "２,名詞,数,*,*,*,*,２,ニ,ニ,1/1,C3",
            "３,名詞,数,*,*,*,*,３,サン,サン,0/2,C3",
            "４,名詞,数,*,*,*,*,４,ヨン,ヨン,1/2,C1",
            "−,記号,一般,*,*,*,*,−,−,−,*/*,*",
            "５,名詞,数,*,*,*,*,５,ゴ,ゴ,1/1,C3",
            "６,名詞,数,*,*,*,*,６,ロク,ロク,2/2,C3",
            "７,名詞,数,*,*,*,*,７,ナナ,ナナ,1/2,C3",
            "８,名詞,数,*,*,*,*,８,ハチ,ハチ,2/2,C3",
        ]);
        assert_eq!(
            got,
            [
                "０,名詞,数,*,*,*,*,０,ゼロ,ゼロ,3/2,*,0",
                "三,名詞,数,*,*,*,*,三,サン,サン,0/2,*,1",
                "−,記号,読点,*,*,*,*,−,、,、,0/0,*,-1",
                "一,名詞,数,*,*,*,*,一,イチ,イチ,3/2,*,0",
                "二,名詞,数,*,*,*,*,二,ニ,ニー,1/2,*,1",
                "三,名詞,数,*,*,*,*,三,サン,サン,3/2,*,0",
                "四,名詞,数,*,*,*,*,四,ヨン,ヨン,1/2,*,1",
                "−,記号,読点,*,*,*,*,−,、,、,0/0,*,-1",
                "五,名詞,数,*,*,*,*,五,ゴ,ゴー,3/2,*,0",
                "六,名詞,数,*,*,*,*,六,ロク,ロク,2/2,*,1",
                "七,名詞,数,*,*,*,*,七,ナナ,ナナ,3/2,*,0",
                "八,名詞,数,*,*,*,*,八,ハチ,ハチ,2/2,*,1",
            ]
        );
    }

    #[test]
    fn counters_and_days_change_readings() {
        let got = digit_pass(&[
            "３,名詞,数,*,*,*,*,３,サン,サン,0/2,C3",
            "本,名詞,接尾,助数詞,*,*,*,本,ホン,ホン,1/2,C3",
        ]);
        assert_eq!(
            got,
            [
                "三,名詞,数,*,*,*,*,三,サン,サン,0/2,C3,0",
                "本,名詞,接尾,助数詞,*,*,*,本,ホン,ボン,1/2,C3,1",
            ]
        );
        let got = digit_pass(&[
            "２,名詞,数,*,*,*,*,２,ニ,ニ,1/1,C3",
            "０,名詞,数,*,*,*,*,０,ゼロ,ゼロ,1/2,C1",
            "日,名詞,接尾,助数詞,*,*,*,日,ニチ,ニチ,1/2,C3",
        ]);
        assert_eq!(
            got,
            ["二十日,名詞,副詞可能,*,*,*,*,二十日,ハツカ,ハツカ,0/3,*,0"]
        );
    }
}

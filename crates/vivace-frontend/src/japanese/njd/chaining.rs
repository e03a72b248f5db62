//! pyopenjtalk-plus's `apply_original_rule_before_chaining` (Python, run
//! between OpenJTalk's pronunciation and digit passes): readings for 不足
//! after a noun, 分 in fractions and 〇〇 as a placeholder, 球 after a
//! native word, and accent-chaining fixes for サ変 verbs, the honorific
//! prefixes お/御/ご, verb compounds, 連用形 accents, passives and
//! causatives before た, and adjectives before なる/する.
//!
//! Each word is updated in place and seen updated by the next step, as the
//! Python's dicts are.

use super::Feature;

/// Python's `s[:-n]` on characters.
fn drop_last_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().take(count.saturating_sub(n)).collect()
}

/// `apply_original_rule_before_chaining`.
pub fn apply(features: &mut [Feature]) {
    let len = features.len();
    for i in 0..len.saturating_sub(1) {
        let following_is_number = features.get(i + 2).is_some_and(|f| f.pos_group1 == "数");
        let previous_is_number = i > 0 && features[i - 1].pos_group1 == "数";
        let (head, tail) = features.split_at_mut(i + 1);
        let (njd, next) = (&mut head[i], &mut tail[0]);

        // 不足 after a noun is read ブソク.
        if njd.pos == "名詞" && next.string == "不足" && next.pron == "フソク" {
            next.read = "ブソク".into();
            next.pron = "ブソク".into();
        }

        // 分 before の and a number is a denominator: ブン.
        let denominator = next.string == "の" && following_is_number;
        if denominator && njd.string.ends_with('分') {
            if njd.pron.ends_with("フン") || njd.pron.ends_with("プン") {
                njd.read = format!("{}ブン", drop_last_chars(&njd.read, 2));
                njd.pron = format!("{}ブン", drop_last_chars(&njd.pron, 2));
            } else if njd.pron.ends_with('ブ') {
                njd.read.push('ン');
                njd.pron.push('ン');
            }
        }
        if previous_is_number && njd.string == "分" && denominator {
            njd.read = "ブン".into();
            njd.pron = "ブン".into();
        }

        // 〇〇 is a placeholder, read マル.
        let next = &mut tail[0];
        if njd.string == "〇" && next.string == "〇" {
            for placeholder in [&mut *njd, &mut *next] {
                placeholder.pos_group1 = "一般".into();
                placeholder.read = "マル".into();
                placeholder.pron = "マル".into();
                placeholder.acc = 1;
                placeholder.mora_size = 2;
            }
        }

        // 球 after a word of kanji with okurigana is read ダマ.
        if next.string == "球"
            && next.pos == "名詞"
            && next.pos_group1 == "接尾"
            && next.pron == "キュー"
            && njd.string.chars().any(|c| ('一'..='鿿').contains(&c))
            && njd.string.chars().any(|c| ('ぁ'..='ゖ').contains(&c))
        {
            next.read = "ダマ".into();
            next.pron = "ダマ".into();
            next.acc = 1;
            next.mora_size = 2;
            next.chain_rule = "C4".into();
        }

        // A サ変 verb joins the word before it.
        if (["サ変接続", "格助詞", "接続助詞"].contains(&njd.pos_group1.as_str())
            || (njd.pos == "名詞" && njd.pos_group1 == "一般")
            || njd.pos == "副詞")
            && next.ctype == "サ変・スル"
        {
            next.chain_flag = 1;
        }
        // After the prefix お/御/ご, the next word's chaining rule changes.
        if ["お", "御", "ご"].contains(&njd.string.as_str()) && njd.chain_rule == "P1" {
            if next.acc == 0 || next.acc == next.mora_size {
                next.chain_rule = "C4".into();
                next.acc = 0;
            } else {
                next.chain_rule = "C1".into();
            }
        }
        // In a verb compound the second verb's accent wins.
        if njd.pos == "動詞" && next.pos == "動詞" {
            next.chain_rule = if next.acc != 0 { "C1" } else { "C4" }.into();
        }
        // 連用形 accents registered on the last mora move one back.
        if ["連用形", "連用タ接続", "連用ゴザイ接続", "連用テ接続"].contains(&njd.cform.as_str())
            && njd.acc == njd.mora_size
            && njd.mora_size > 1
        {
            njd.acc -= 1;
        }
        // れる/られる/せる/させる/ちゃう + た keeps the accent up.
        if ["れる", "られる", "せる", "させる", "ちゃう"].contains(&njd.orig.as_str())
            && next.string == "た"
        {
            next.chain_rule = "F2@1".into();
        }
        // An adjective + なる/する is one accent phrase.
        if njd.pos == "形容詞" && (next.orig == "なる" || next.orig == "する") {
            next.chain_flag = 1;
        }
    }
}

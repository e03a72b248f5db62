//! pyopenjtalk-plus's `process_odori_features`: the iteration marks that
//! MeCab leaves as words of their own (read as a pause, `、`) get the
//! reading they repeat.
//!
//! - 々 repeats the kanji before it: one kanji per mark (叙々々苑 →
//!   ジョ·ジョジョ·エン), or a whole run of kanji words once (部分々々 →
//!   ブブン·ブブン). A lone 々 after a longer kanji word is read again with
//!   the next kanji as one word (民主々義 → ミンシュ·シュギ), by OpenJTalk
//!   itself ([`Reanalyze`]). After a word that already ends in 々, it
//!   repeats that word's own unit (日々々 → ヒビ·ビ).
//! - ゝ ヽ repeat the kana mora before them, unvoiced (がゝ → ガ·カ);
//!   ゞ ヾ repeat it voiced (みすゞ → ミス·ズ).
//!
//! Each expanded mark becomes a common noun; a 々 chains to the word it
//! repeats and takes its accent.

use super::super::njd::Feature;

/// OpenJTalk's front end without pyopenjtalk-plus's post-processing
/// (`OpenJTalk.run_frontend`: MeCab, then NJD), for a 々 read again with
/// the kanji around it.
pub type Reanalyze<'a> = &'a dyn Fn(&str) -> Vec<Feature>;

/// The small kana that join the mora before them (`_SMALL_KANA`).
const SMALL_KANA: [char; 8] = ['ャ', 'ュ', 'ョ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ'];

/// `split_kana_mora`: a reading cut into morae, a small kana joining the
/// character before it.
fn split_kana_mora(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut morae = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars.get(i + 1).is_some_and(|c| SMALL_KANA.contains(c)) {
            morae.push(chars[i..i + 2].iter().collect());
            i += 2;
        } else {
            morae.push(chars[i].to_string());
            i += 1;
        }
    }
    morae
}

/// The unvoiced kana of a voiced one (`_SEION_CHAR_MAP`), else itself.
fn seion(c: char) -> char {
    let voiced =
        "がぎぐげござじずぜぞだぢづでどばびぶべぼガギグゲゴザジズゼゾダヂヅデドバビブベボヴ";
    let plain =
        "かきくけこさしすせそたちつてとはひふへほカキクケコサシスセソタチツテトハヒフヘホウ";
    voiced
        .chars()
        .position(|v| v == c)
        .and_then(|k| plain.chars().nth(k))
        .unwrap_or(c)
}

/// `detect_odori_unit`: the shortest number of morae that the end of a
/// reading repeats, voicing ignored (サマザマ → 2); `None` if it repeats
/// nothing.
fn detect_odori_unit(read: &str) -> Option<usize> {
    let plain: String = read.chars().map(seion).collect();
    let morae = split_kana_mora(&plain);
    let n = morae.len();
    if n < 2 {
        return None;
    }
    (1..=n / 2).find(|&period| morae[n - 2 * period..n - period] == morae[n - period..])
}

/// The voiced mora of an unvoiced one, single kana or a contracted sound,
/// in hiragana or katakana (`dakuten_map` in `process_odori_features`).
const DAKUTEN: [(&str, &str); 64] = [
    ("カ", "ガ"),
    ("キ", "ギ"),
    ("ク", "グ"),
    ("ケ", "ゲ"),
    ("コ", "ゴ"),
    ("サ", "ザ"),
    ("シ", "ジ"),
    ("ス", "ズ"),
    ("セ", "ゼ"),
    ("ソ", "ゾ"),
    ("タ", "ダ"),
    ("チ", "ヂ"),
    ("ツ", "ヅ"),
    ("テ", "デ"),
    ("ト", "ド"),
    ("ハ", "バ"),
    ("ヒ", "ビ"),
    ("フ", "ブ"),
    ("ヘ", "ベ"),
    ("ホ", "ボ"),
    ("か", "が"),
    ("き", "ぎ"),
    ("く", "ぐ"),
    ("け", "げ"),
    ("こ", "ご"),
    ("さ", "ざ"),
    ("し", "じ"),
    ("す", "ず"),
    ("せ", "ぜ"),
    ("そ", "ぞ"),
    ("た", "だ"),
    ("ち", "ぢ"),
    ("つ", "づ"),
    ("て", "で"),
    ("と", "ど"),
    ("は", "ば"),
    ("ひ", "び"),
    ("ふ", "ぶ"),
    ("へ", "べ"),
    ("ほ", "ぼ"),
    ("キャ", "ギャ"),
    ("キュ", "ギュ"),
    ("キョ", "ギョ"),
    ("シャ", "ジャ"),
    ("シュ", "ジュ"),
    ("ショ", "ジョ"),
    ("チャ", "ヂャ"),
    ("チュ", "ヂュ"),
    ("チョ", "ヂョ"),
    ("ヒャ", "ビャ"),
    ("ヒュ", "ビュ"),
    ("ヒョ", "ビョ"),
    ("きゃ", "ぎゃ"),
    ("きゅ", "ぎゅ"),
    ("きょ", "ぎょ"),
    ("しゃ", "じゃ"),
    ("しゅ", "じゅ"),
    ("しょ", "じょ"),
    ("ちゃ", "ぢゃ"),
    ("ちゅ", "ぢゅ"),
    ("ちょ", "ぢょ"),
    ("ひゃ", "びゃ"),
    ("ひゅ", "びゅ"),
    ("ひょ", "びょ"),
];

fn voiced(mora: &str) -> &str {
    DAKUTEN
        .iter()
        .find(|(plain, _)| *plain == mora)
        .map_or(mora, |(_, voiced)| voiced)
}

fn unvoiced(mora: &str) -> &str {
    DAKUTEN
        .iter()
        .find(|(_, voiced)| *voiced == mora)
        .map_or(mora, |(plain, _)| plain)
}

/// A CJK unified ideograph (U+4E00–U+9FFF, the range the reference tests).
fn is_kanji(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// `is_dancing`: the word is made of 々 only.
fn is_dancing(orig: &str) -> bool {
    !orig.is_empty() && orig.chars().all(|c| c == '々')
}

/// `is_odoriji`: the word is made of ゝ ゞ ヽ ヾ only (true of an empty
/// one too, as Python's `set(orig) <= {…}` is).
fn is_odoriji(orig: &str) -> bool {
    orig.chars().all(|c| matches!(c, 'ゝ' | 'ゞ' | 'ヽ' | 'ヾ'))
}

fn count_odori(orig: &str) -> i32 {
    // A word is far shorter than i32::MAX characters.
    orig.chars().filter(|&c| c == '々').count() as i32
}

/// `is_kanji_token`: not a symbol, and a kanji in its base form.
fn is_kanji_token(f: &Feature) -> bool {
    f.pos != "記号" && f.orig.chars().any(is_kanji)
}

/// `is_single_kanji_token`: one kanji.
fn is_single_kanji_token(f: &Feature) -> bool {
    let mut chars = f.orig.chars();
    is_kanji_token(f) && chars.next().is_some_and(is_kanji) && chars.next().is_none()
}

/// An expanded mark is no longer a symbol: the reference makes it a common
/// noun, so that later rules treat it as a word.
fn make_common_noun(f: &mut Feature) {
    if f.pos == "記号" {
        set_common_noun(f);
    }
}

fn set_common_noun(f: &mut Feature) {
    f.pos = "名詞".into();
    f.pos_group1 = "一般".into();
    f.pos_group2 = "*".into();
    f.pos_group3 = "*".into();
    f.ctype = "*".into();
    f.cform = "*".into();
}

/// `needs_reanalysis`: a lone 々 after a word of several characters ending
/// in a kanji is read again with that kanji, and with the next word too
/// when that is a single kanji. Gives the text to read again and whether
/// the next word joins it.
fn needs_reanalysis(
    odori: &Feature,
    prev: &Feature,
    next: Option<&Feature>,
) -> Option<(String, bool)> {
    if count_odori(&odori.orig) != 1 || !is_kanji_token(prev) || prev.orig.chars().count() < 2 {
        return None;
    }
    let last = prev.orig.chars().next_back().filter(|&c| is_kanji(c))?;
    Some(match next.filter(|n| is_single_kanji_token(n)) {
        Some(next) => (format!("{last}{}", next.orig), true),
        None => (last.to_string(), false),
    })
}

/// `process_odoriji`: ゝ ヽ (unvoiced) or ゞ ヾ (voiced) take the last mora
/// of `prev`'s reading and pronunciation.
fn process_odoriji(odori: &mut Feature, prev: &Feature) {
    let read_morae = split_kana_mora(&prev.read);
    let mut pron_source = prev.pron.replace('’', "");
    if pron_source.is_empty() {
        pron_source = prev.read.clone();
    }
    let pron_morae = split_kana_mora(&pron_source);
    let (Some(prev_read), Some(prev_pron)) = (read_morae.last(), pron_morae.last()) else {
        // The reference fails on a word with morae but no reading (none in
        // OpenJTalk's dictionary); the mark is left as it is.
        return;
    };
    // Python's int(mora_size / len(read)): the morae shared out per
    // character, truncated.
    let mora_size = (f64::from(prev.mora_size) / read_morae.len() as f64) as i32;
    let forced_voiced = odori
        .orig
        .chars()
        .find(|c| matches!(c, 'ゝ' | 'ゞ' | 'ヽ' | 'ヾ'))
        .is_some_and(|c| matches!(c, 'ゞ' | 'ヾ'));
    let single_grapheme = !prev_read.chars().any(|c| SMALL_KANA.contains(&c));
    let (read, pron) = if forced_voiced {
        (voiced(prev_read), voiced(prev_pron))
    } else if single_grapheme {
        (unvoiced(prev_read), unvoiced(prev_pron))
    } else {
        (prev_read.as_str(), prev_pron.as_str())
    };
    odori.read = read.to_owned();
    odori.pron = pron.to_owned();
    odori.mora_size = mora_size;
    make_common_noun(odori);
}

/// A run of 々 after a word that already ends in 々: its mark repeats the
/// unit that word's reading repeats (日々々 → ビ). False when the reading
/// repeats nothing.
fn repeat_unit_of_previous(features: &mut [Feature], i: usize) -> bool {
    let prev = &features[i - 1];
    let Some(period) = detect_odori_unit(&prev.read) else {
        return false;
    };
    let read_morae = split_kana_mora(&prev.read);
    let pron_morae = split_kana_mora(&prev.pron);
    if read_morae.len() < period {
        return false;
    }
    let unit_read = read_morae[read_morae.len() - period..].concat();
    // Python's pron[len(pron) - period:], a negative start counting from
    // the end (a pronunciation can have fewer morae than the reading).
    let short = period.saturating_sub(pron_morae.len());
    let from = pron_morae
        .len()
        .checked_sub(period)
        .unwrap_or_else(|| pron_morae.len().saturating_sub(short));
    let unit_pron = pron_morae[from..].concat();
    // Python's floor division of two non-negative ints, times the period.
    let unit_mora = prev.mora_size.div_euclid(read_morae.len() as i32) * period as i32;
    let acc = prev.acc;
    let current = &mut features[i];
    let count = count_odori(&current.orig);
    repeat_onto(current, (&unit_read, &unit_pron, unit_mora), count, acc);
    true
}

/// A 々 word reads `unit` (reading, pronunciation, morae) `times` times,
/// with the accent of the word it repeats, chained to it.
fn repeat_onto(f: &mut Feature, unit: (&str, &str, i32), times: i32, acc: i32) {
    let (read, pron, mora_size) = unit;
    let repeat = usize::try_from(times).unwrap_or(0);
    f.read = read.repeat(repeat);
    f.pron = pron.repeat(repeat);
    f.mora_size = mora_size * times;
    f.acc = acc;
    f.chain_flag = 1;
    make_common_noun(f);
}

/// The marks `features[start..end]` (a run of 々 words) repeat the kanji
/// words before them, back to a symbol, filler, interjection or non-kanji
/// word, up to as many characters as there are marks (at most 8).
fn repeat_previous_kanji(features: &mut [Feature], start: usize, end: usize) {
    let total: i32 = features[start..end]
        .iter()
        .map(|f| count_odori(&f.orig))
        .sum();
    let needed = total.min(8);
    let mut first = start;
    let mut collected = 0;
    while first > 0 {
        let target = &features[first - 1];
        if matches!(target.pos.as_str(), "記号" | "フィラー" | "感動詞") || !is_kanji_token(target)
        {
            break;
        }
        first -= 1;
        collected += target.orig.chars().count() as i32;
        if collected >= needed {
            break;
        }
    }
    let words = &features[first..start];
    let Some(head) = words.first() else {
        return;
    };
    let single_kanji = words.len() == 1 && head.orig.chars().count() == 1;
    let read: String = words.iter().map(|f| f.read.as_str()).collect();
    let pron: String = words.iter().map(|f| f.pron.as_str()).collect();
    let mora_size: i32 = words.iter().map(|f| f.mora_size).sum();
    let acc = head.acc;
    for f in &mut features[start..end] {
        let count = count_odori(&f.orig);
        let times = if single_kanji { count } else { 1 };
        repeat_onto(f, (&read, &pron, mora_size), times, acc);
    }
}

/// `process_odori_features`, with OpenJTalk to read a lone 々 again.
pub fn process_odori_features(features: &mut Vec<Feature>, reanalyze: Reanalyze<'_>) {
    let mut i = 0;
    while i < features.len() {
        if is_dancing(&features[i].orig) {
            if i > 0 {
                if let Some((text, with_next)) =
                    needs_reanalysis(&features[i], &features[i - 1], features.get(i + 1))
                {
                    let mut analyzed = reanalyze(&text);
                    if with_next {
                        if let Some(first) = analyzed.first_mut() {
                            first.chain_flag = 1;
                        }
                        let count = analyzed.len();
                        features.splice(i..i + 2, analyzed);
                        i += count;
                        continue;
                    }
                    if !analyzed.is_empty() {
                        let mut word = analyzed.swap_remove(0);
                        word.chain_flag = 1;
                        set_common_noun(&mut word);
                        features[i] = word;
                        i += 1;
                        continue;
                    }
                    // The reference fails on a kanji OpenJTalk reads as
                    // nothing (none does); the mark is read as below.
                }
            }
            let start = i;
            let end = start
                + features[start..]
                    .iter()
                    .take_while(|f| is_dancing(&f.orig))
                    .count();
            if i > 0 && features[i - 1].orig.ends_with('々') && repeat_unit_of_previous(features, i)
            {
                i += 1;
                continue;
            }
            repeat_previous_kanji(features, start, end);
            i = end;
        } else if is_odoriji(&features[i].orig) {
            if i > 0 && features[i - 1].pos != "記号" {
                // The nearest word before it with morae, past symbols.
                if let Some(prev) = (0..i)
                    .rev()
                    .find(|&k| features[k].pos != "記号" && features[k].mora_size > 0)
                {
                    let prev = features[prev].clone();
                    process_odoriji(&mut features[i], &prev);
                }
            }
            i += 1;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{detect_odori_unit, split_kana_mora};

    #[test]
    fn a_reading_repeats_its_last_unit_voicing_ignored() {
        // detect_odori_unit's docstring example, and two that repeat nothing.
        assert_eq!(detect_odori_unit("サマザマ"), Some(2));
        assert_eq!(detect_odori_unit("ヒビ"), Some(1));
        assert_eq!(detect_odori_unit("ワレ"), None);
        assert_eq!(detect_odori_unit("ア"), None);
        assert_eq!(split_kana_mora("キャッシュ"), vec!["キャ", "ッ", "シュ"]);
    }
}

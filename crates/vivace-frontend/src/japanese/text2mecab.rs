//! OpenJTalk's `text2mecab` as pyopenjtalk-plus applies it before MeCab:
//! printable ASCII to its full-width form (the space to U+3000, `"` `'` `-`
//! `\` `` ` `` `~` to ” ’ − ￥ ‘ 〜), control characters (tab, CR and LF
//! included) dropped, half-width katakana to full-width with the
//! sound marks composed where OpenJTalk's table lists the pair (ｶﾞ → ガ,
//! ﾊﾟ → パ, ｳﾞ → ヴ; a mark it does not list is dropped), and everything
//! else unchanged.

use unicode_normalization::UnicodeNormalization;

const VOICED_MARK: char = '\u{ff9e}';
const SEMI_VOICED_MARK: char = '\u{ff9f}';

/// The half-width katakana OpenJTalk composes with ﾞ: ｳ, ｶ–ｺ, ｻ–ｿ, ﾀ–ﾄ,
/// ﾊ–ﾎ.
fn takes_voiced_mark(c: char) -> bool {
    matches!(c, 'ｳ' | 'ｶ'..='ｺ' | 'ｻ'..='ｿ' | 'ﾀ'..='ﾄ' | 'ﾊ'..='ﾎ')
}

/// ... and with ﾟ: ﾊ–ﾎ.
fn takes_semi_voiced_mark(c: char) -> bool {
    matches!(c, 'ﾊ'..='ﾎ')
}

fn full_width_ascii(c: char) -> Option<char> {
    Some(match c {
        ' ' => '\u{3000}',
        '"' => '\u{201d}',
        '\'' => '\u{2019}',
        '-' => '\u{2212}',
        '\\' => '\u{ffe5}',
        '`' => '\u{2018}',
        '~' => '\u{301c}',
        '!'..='}' => char::from_u32(c as u32 + 0xfee0)?,
        _ => return None,
    })
}

/// The text as MeCab receives it.
pub fn text2mecab(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let pair = match next {
            Some(VOICED_MARK) if takes_voiced_mark(c) => true,
            Some(SEMI_VOICED_MARK) if takes_semi_voiced_mark(c) => true,
            _ => false,
        };
        if pair {
            out.extend([c, chars[i + 1]].iter().collect::<String>().nfkc());
            i += 2;
            continue;
        }
        if c.is_ascii() {
            out.extend(full_width_ascii(c));
        } else if ('\u{ff61}'..='\u{ff9d}').contains(&c) {
            out.extend(c.to_string().nfkc());
        } else if c != VOICED_MARK && c != SEMI_VOICED_MARK {
            out.push(c);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_width_forms_become_full_width() {
        assert_eq!(text2mecab("ABC 1-2~"), "ＡＢＣ\u{3000}１−２〜");
        assert_eq!(text2mecab("ｶﾞｷﾟﾜﾞ\u{7}"), "ガキワ");
    }
}

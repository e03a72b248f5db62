//! Thai number spelling as Piper reads numbers in Thai text:
//! unicode-rbnf 2.4's `RbnfEngine.for_language("th").format_number`, over
//! CLDR's Thai rules (`rbnf/th.xml`, Unicode licence):
//!
//! ```text
//! spellout-cardinal:  -x: ลบ​→→;  x.x: ←←​จุด​→→→;  0–9: ศูนย์ … เก้า;
//!   10: สิบ[​→%%alt-ones→];  20: ยี่​สิบ[​→%%alt-ones→];  30: ←←​สิบ[​→%%alt-ones→];
//!   100: ←←​ร้อย[​→→];  1000: พัน;  10000: หมื่น;  100000: แสน;  1000000: ล้าน;
//!   10^18: =#,##0= (no such ruleset: the number is not spelled);
//! alt-ones: 1: เอ็ด;  2: =%spellout-cardinal=
//! ```
//!
//! The rules are written out here rather than interpreted, with the
//! engine's behaviour where it departs from CLDR's intent, since Piper's
//! output follows the engine: the rule is chosen by the number as a float
//! (so numbers from about 999,999,999,999,999,936 up fail), a fraction is
//! anything further than 1e-8 from an integer (`1.000000001` reads `หนึ่ง`),
//! its digits are read one by one and unseparated, a negative number keeps
//! only its integer part (`-1.5` reads `ลบ​หนึ่ง`, `-0.5` just `ลบ​`), and a
//! fraction whose `Decimal` prints in scientific notation is an error.

/// Words are separated by ZERO WIDTH SPACE, as the CLDR rules write them.
const ZWSP: &str = "\u{200b}";

const DIGITS: [&str; 10] = [
    "ศูนย์",
    "หนึ่ง",
    "สอง",
    "สาม",
    "สี่",
    "ห้า",
    "หก",
    "เจ็ด",
    "แปด",
    "เก้า",
];

/// The first number the rules cannot spell (`=#,##0=`).
const LIMIT: u128 = 1_000_000_000_000_000_000;

/// The zero of every run of Unicode decimal digits (category Nd, Unicode
/// 14), so that `Decimal` parsing of any script's digits can be followed.
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit (Python's `\d`), or `None`.
pub fn decimal_digit(c: char) -> Option<u32> {
    use unicode_categories::UnicodeCategories;
    if c.is_ascii_digit() {
        return c.to_digit(10);
    }
    if !c.is_number_decimal_digit() {
        return None;
    }
    let code = c as u32;
    let zero = DIGIT_ZEROS.iter().rev().find(|&&z| z <= code)?;
    let value = code - zero;
    (value < 10).then_some(value)
}

/// Spells a number matched by Piper's `-?\d+(?:\.\d+)?` in Thai, words
/// joined by ZERO WIDTH SPACE; `None` where unicode-rbnf raises (Piper then
/// drops the number).
pub fn spell(number: &str) -> Option<String> {
    let (negative, body) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (int_digits, frac_digits) = match body.split_once('.') {
        Some((i, f)) => (digits(i)?, Some(digits(f)?)),
        None => (digits(body)?, None),
    };
    if int_digits.is_empty() || frac_digits.as_ref().is_some_and(String::is_empty) {
        return None;
    }
    // `float(Decimal(number))`, as the engine chooses its rule.
    let ascii = match &frac_digits {
        Some(f) => format!("{int_digits}.{f}"),
        None => int_digits.clone(),
    };
    let magnitude: f64 = ascii.parse().ok()?;
    let value = if negative { -magnitude } else { magnitude };
    if value < 0.0 {
        // `-x: ลบ​→→`: the remainder is `int(-number)`; a zero one is
        // left out.
        let truncated = integer(&int_digits)?;
        if truncated == 0 {
            return Some(format!("ลบ{ZWSP}"));
        }
        return Some(format!(
            "ลบ{ZWSP}{}",
            cardinal(truncated, truncated as f64)?
        ));
    }
    if !value.is_finite() {
        return None;
    }
    if (value - value.round()).abs() > 1e-8 {
        // `x.x: ←←​จุด​→→→` over `str(Decimal(number))`.
        let frac = frac_digits.unwrap_or_default();
        if decimal_is_scientific(&int_digits, &frac) {
            return None;
        }
        let whole = integer(&int_digits)?;
        let mut out = cardinal(whole, whole as f64)?;
        out.push_str(ZWSP);
        out.push_str("จุด");
        out.push_str(ZWSP);
        for d in frac.bytes() {
            out.push_str(DIGITS[usize::from(d - b'0')]);
        }
        return Some(out);
    }
    // An integer within the tolerance: the rule by the float's integer
    // part, the substitutions by the exact integer part.
    let exact = integer(&int_digits)?;
    cardinal(exact, value)
}

/// The ASCII digits of a run of Unicode decimal digits.
fn digits(run: &str) -> Option<String> {
    run.chars()
        .map(|c| decimal_digit(c).and_then(|d| char::from_digit(d, 10)))
        .collect()
}

fn integer(ascii: &str) -> Option<u128> {
    let trimmed = ascii.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some(0);
    }
    if trimmed.len() > 38 {
        return None;
    }
    trimmed.parse().ok()
}

/// Whether Python prints `Decimal(f"{int}.{frac}")` in scientific notation
/// (its adjusted exponent below -6), which the engine cannot split.
fn decimal_is_scientific(int_digits: &str, frac: &str) -> bool {
    let all = format!("{int_digits}{frac}");
    let significant = all.trim_start_matches('0');
    if significant.is_empty() {
        return false;
    }
    let exponent = -(frac.len() as i64);
    let adjusted = exponent + significant.len() as i64 - 1;
    adjusted < -6
}

/// `spellout-cardinal` for a non-negative integer: `rule_value` is the
/// number as the engine's float, which picks the rule.
fn cardinal(n: u128, rule_value: f64) -> Option<String> {
    let pick = rule_value.trunc();
    if pick >= LIMIT as f64 {
        return None;
    }
    let pick = pick as u128;
    if pick < 10 {
        // The rule's own word (its divisor is 1).
        return Some(DIGITS[pick as usize].to_string());
    }
    let (rule, word) = match pick {
        10..=19 => (10, "สิบ"),
        20..=29 => (20, "ยี่\u{200b}สิบ"),
        30..=99 => (30, "สิบ"),
        100..=999 => (100, "ร้อย"),
        1000..=9999 => (1000, "พัน"),
        10_000..=99_999 => (10_000, "หมื่น"),
        100_000..=999_999 => (100_000, "แสน"),
        _ => (1_000_000, "ล้าน"),
    };
    let divisor = divisor(rule, n);
    let (q, r) = (n / divisor, n % divisor);
    let mut out = String::new();
    if rule >= 30 {
        // `←←`: the quotient in this ruleset, never zero here.
        out.push_str(&cardinal(q, q as f64)?);
        out.push_str(ZWSP);
    }
    out.push_str(word);
    if r != 0 {
        out.push_str(ZWSP);
        if rule < 100 {
            // `→%%alt-ones→`: 1 is เอ็ด, the rest the cardinal.
            if r == 1 {
                out.push_str("เอ็ด");
            } else {
                out.push_str(&cardinal(r, r as f64)?);
            }
        } else {
            out.push_str(&cardinal(r, r as f64)?);
        }
    }
    Some(out)
}

/// The engine's divisor for a rule: `20` and `30` count as `10` (it
/// rewrites a leading digit other than 1), then the power of ten from
/// `floor`/`ceil` of `log(value, 10)` (Python's `ln(v) / ln(10)`).
fn divisor(rule: u128, n: u128) -> u128 {
    let text = rule.to_string();
    let value = if text.len() > 1 && !text.starts_with('1') {
        format!("1{}", &text[1..]).parse().unwrap_or(rule)
    } else {
        rule
    };
    let log = (value as f64).ln() / 10f64.ln();
    let below = 10u128.pow(log.floor() as u32);
    let above = 10u128.pow(log.ceil() as u32);
    if n >= above {
        above
    } else {
        below
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_other_scripts_read_as_decimal_does() {
        assert_eq!(decimal_digit('๗'), Some(7));
        assert_eq!(decimal_digit('٣'), Some(3));
        assert_eq!(decimal_digit('७'), Some(7));
        assert_eq!(decimal_digit('x'), None);
        assert_eq!(decimal_digit('½'), None);
    }

    #[test]
    fn the_engines_quirks_are_kept() {
        assert_eq!(spell("21").as_deref(), Some("ยี่\u{200b}สิบ\u{200b}เอ็ด"));
        assert_eq!(spell("-1.5").as_deref(), Some("ลบ\u{200b}หนึ่ง"));
        assert_eq!(spell("-0.5").as_deref(), Some("ลบ\u{200b}"));
        assert_eq!(spell("1.000000001").as_deref(), Some("หนึ่ง"));
        assert_eq!(spell("0.0000001"), None);
        assert_eq!(spell("999999999999999999"), None);
    }
}

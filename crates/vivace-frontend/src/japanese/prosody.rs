//! piper-tts 1.8's reading of OpenJTalk's full-context labels
//! (`piper.phonemize_japanese`): the phones, with pitch-accent marks (`↑`
//! rise, `↓` fall after the nucleus, `#` accent-phrase boundary), `,` for a
//! pause and `.` or `?` at the end, then each phone as IPA, one code point
//! per phoneme, so that Japanese voices use Piper's default id map.

/// Accent rise (low → high within an accent phrase).
pub const ACCENT_RISE: &str = "↑";
/// Accent fall (after the nucleus).
pub const ACCENT_FALL: &str = "↓";
/// Accent phrase boundary.
pub const ACCENT_PHRASE_BOUNDARY: &str = "#";
/// A pause (OpenJTalk's `pau`).
pub const PAUSE: &str = ",";
/// The end of a statement.
pub const DECLARATIVE_END: &str = ".";
/// The end of a question.
pub const INTERROGATIVE_END: &str = "?";

const PROSODY_SYMBOLS: [&str; 6] = [
    ACCENT_RISE,
    ACCENT_FALL,
    ACCENT_PHRASE_BOUNDARY,
    PAUSE,
    DECLARATIVE_END,
    INTERROGATIVE_END,
];

/// Piper's `_NO_FEATURE`: a field that is absent or `xx`.
const NO_FEATURE: i64 = -50;

/// The phones that can end a mora (and so carry a phrase boundary).
const MORA_FINAL_PHONES: [&str; 12] = ["a", "i", "u", "e", "o", "A", "I", "U", "E", "O", "N", "cl"];

/// The text between `-` and the next `+`: the label's current phone
/// (Piper's `\-(.*?)\+`).
fn current_phone(label: &str) -> Option<&str> {
    let start = label.find('-')? + 1;
    let len = label[start..].find('+')?;
    Some(&label[start..start + len])
}

/// An integer read right after `prefix` up to `terminator` (Piper's
/// `_numeric_feature` with its patterns `/A:([0-9\-]+)\+`, `\+(\d+)\+`,
/// `\+(\d+)/`, `/F:(\d+)_` and `!(\d+)_`): the first place where the
/// prefix is followed by characters of the allowed set and then the
/// terminator, as the regex search finds it.
fn numeric_feature(label: &str, prefix: &str, allow_minus: bool, terminator: char) -> i64 {
    let mut from = 0;
    while let Some(at) = label[from..].find(prefix) {
        let start = from + at + prefix.len();
        let rest = &label[start..];
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || (allow_minus && c == '-')))
            .unwrap_or(rest.len());
        if len > 0 && rest[len..].starts_with(terminator) {
            // Python's int() of the match; `[0-9\-]+` can match what int()
            // rejects (`1-2`), which Piper reads as "no feature".
            return rest[..len].parse().unwrap_or(NO_FEATURE);
        }
        // Search again one byte on (the prefixes start with ASCII).
        from += at + 1;
    }
    NO_FEATURE
}

/// Piper's `_phonemize_sentence` after `make_label`: OpenJTalk phones
/// (devoiced vowels folded to voiced, as Piper's default does) with the
/// prosody marks.
pub fn phones_from_labels(labels: &[String]) -> Vec<String> {
    let count = labels.len();
    let mut phones = Vec::new();
    for (index, label) in labels.iter().enumerate() {
        let Some(phone) = current_phone(label) else {
            continue;
        };
        let phone = match phone {
            "A" | "I" | "U" | "E" | "O" => phone.to_ascii_lowercase(),
            _ => phone.to_owned(),
        };
        if phone == "sil" {
            if index == count - 1 {
                let question = numeric_feature(label, "!", false, '_') == 1;
                phones.push(
                    if question {
                        INTERROGATIVE_END
                    } else {
                        DECLARATIVE_END
                    }
                    .to_owned(),
                );
            }
            continue;
        }
        if phone == "pau" {
            phones.push(PAUSE.to_owned());
            continue;
        }
        phones.push(phone.clone());
        let Some(next) = labels.get(index + 1) else {
            continue;
        };
        let a1 = numeric_feature(label, "/A:", true, '+');
        let a2 = numeric_feature(label, "+", false, '+');
        let a3 = numeric_feature(label, "+", false, '/');
        let f1 = numeric_feature(label, "/F:", false, '_');
        let a2_next = numeric_feature(next, "+", false, '+');
        if a3 == 1 && a2_next == 1 && MORA_FINAL_PHONES.contains(&phone.as_str()) {
            phones.push(ACCENT_PHRASE_BOUNDARY.to_owned());
        } else if a1 == 0 && a2_next == a2 + 1 && a2 != f1 {
            phones.push(ACCENT_FALL.to_owned());
        } else if a2 == 1 && a2_next == 2 {
            phones.push(ACCENT_RISE.to_owned());
        }
    }
    phones
}

/// Piper's `OPENJTALK_TO_IPA`.
fn ipa(phone: &str) -> Option<&'static str> {
    Some(match phone {
        "a" => "a",
        "i" => "i",
        "u" => "ɯ",
        "e" => "e",
        "o" => "o",
        "k" => "k",
        "ky" => "kʲ",
        "kw" => "kʷ",
        "g" => "ɡ",
        "gy" => "ɡʲ",
        "gw" => "ɡʷ",
        "s" => "s",
        "sh" => "ɕ",
        "z" => "z",
        "j" => "dʑ",
        "t" => "t",
        "ts" => "ts",
        "ty" => "tʲ",
        "ch" => "tɕ",
        "d" => "d",
        "dy" => "dʲ",
        "n" => "n",
        "ny" => "nʲ",
        "h" => "h",
        "hy" => "hʲ",
        "f" => "ɸ",
        "b" => "b",
        "by" => "bʲ",
        "p" => "p",
        "py" => "pʲ",
        "m" => "m",
        "my" => "mʲ",
        "y" => "j",
        "r" => "ɾ",
        "ry" => "ɾʲ",
        "w" => "w",
        "v" => "v",
        "N" => "ɴ",
        "cl" => "ʔ",
        _ => return None,
    })
}

/// Piper's `phonemize` for one sentence's phones: prosody marks kept, each
/// phone as its IPA code points; a phone without IPA is dropped (Piper logs
/// a warning).
pub fn ipa_phonemes(phones: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for phone in phones {
        if PROSODY_SYMBOLS.contains(&phone.as_str()) {
            out.push(phone.clone());
        } else if let Some(ipa) = ipa(phone) {
            out.extend(ipa.chars().map(String::from));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_as_pipers_patterns_read_them() {
        let label = "xx^sil-k+o=N/A:-2+1+4/B:xx-xx_xx/C:02_xx+xx/D:xx+xx_xx/E:xx_xx!0_xx-xx/F:4_3#0_xx@1_1|1_4/G:xx_xx%xx_xx_xx/H:xx_xx/I:1-4@1+1&1-1|1+4/J:xx_xx/K:1+1-4";
        assert_eq!(current_phone(label), Some("k"));
        assert_eq!(numeric_feature(label, "/A:", true, '+'), -2);
        assert_eq!(numeric_feature(label, "+", false, '+'), 1);
        assert_eq!(numeric_feature(label, "+", false, '/'), 4);
        assert_eq!(numeric_feature(label, "/F:", false, '_'), 4);
        assert_eq!(numeric_feature(label, "!", false, '_'), 0);
        assert_eq!(numeric_feature("/A:xx+xx+xx", "/A:", true, '+'), NO_FEATURE);
    }
}

//! Punctuation kept around espeak-ng, as phonemizer 3.4.0's `Punctuation`
//! does for kokoro-onnx (`preserve_punctuation=True`): each line is cut at
//! its runs of punctuation, the pieces between them are phonemized, and the
//! runs are put back, with the spaces they had in the text.
//!
//! Reproduced with its quirks (docs/KOKORO_TEXT.md §2.3, §2.6): a `,` or
//! `.` between two ASCII digits is no mark (`3.50` reaches espeak-ng whole),
//! yet a line is cut at the first *occurrence* of each mark's text, so a
//! bare `.` mark after a decimal number cuts the number (`x 1.5 y.` →
//! `x 1` + `5 y.`).

/// The marks phonemizer keeps by default (`Punctuation.default_marks()`).
const MARKS: &str = ";:,.!?¡¿—…\"«»“”(){}[]";

/// Where a run of marks sits in its line (phonemizer's `_MarkIndex.position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// At the start of the line (`B`).
    Begin,
    /// Inside the line (`I`).
    Inside,
    /// At the end of the line (`E`).
    End,
    /// The whole line (`A`).
    Alone,
}

/// One run of marks (with the whitespace around it) taken out of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The line it came from (counting non-blank lines).
    pub line: usize,
    /// Its text, as in the input.
    pub text: String,
    /// Where it sits in its line.
    pub position: Position,
}

/// Python's `str.isspace` (what `\s` matches): Unicode whitespace plus the
/// four information separators U+001C..U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The runs of marks in `line`, as `re.finditer` finds phonemizer's
/// pattern `(\s*(?:[marks]|(?<![0-9])[,.]|[,.](?![0-9]))+\s*)+`: maximal
/// runs of marks and whitespace that hold at least one mark.
fn mark_runs(line: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let is_mark = |i: usize| {
        let c = chars[i].1;
        if c == ',' || c == '.' {
            let digit_before = i > 0 && chars[i - 1].1.is_ascii_digit();
            let digit_after = chars.get(i + 1).is_some_and(|(_, n)| n.is_ascii_digit());
            !(digit_before && digit_after)
        } else {
            MARKS.contains(c)
        }
    };
    let byte_at = |i: usize| chars.get(i).map_or(line.len(), |(b, _)| *b);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !(is_mark(i) || is_python_space(chars[i].1)) {
            i += 1;
            continue;
        }
        let start = i;
        let mut has_mark = false;
        while i < chars.len() && (is_mark(i) || is_python_space(chars[i].1)) {
            has_mark |= is_mark(i);
            i += 1;
        }
        if has_mark {
            runs.push(&line[byte_at(start)..byte_at(i)]);
        }
    }
    runs
}

/// phonemizer's `Punctuation.preserve` over `lines`: the pieces to
/// phonemize (empty ones dropped) and the marks taken out.
pub fn preserve(lines: &[&str]) -> (Vec<String>, Vec<Mark>) {
    let mut chunks = Vec::new();
    let mut marks = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let runs = mark_runs(line);
        if runs.is_empty() {
            chunks.push(line.to_string());
            continue;
        }
        if runs.len() == 1 && runs[0] == *line {
            marks.push(Mark {
                line: number,
                text: line.to_string(),
                position: Position::Alone,
            });
            continue;
        }
        let last = runs.len() - 1;
        let line_marks: Vec<Mark> = runs
            .iter()
            .enumerate()
            .map(|(k, run)| {
                let position = if k == 0 && line.starts_with(run) {
                    Position::Begin
                } else if k == last && line.ends_with(run) {
                    Position::End
                } else {
                    Position::Inside
                };
                Mark {
                    line: number,
                    text: run.to_string(),
                    position,
                }
            })
            .collect();
        // Cut at the first occurrence of each mark's text in what is left.
        let mut rest: &str = line;
        for mark in &line_marks {
            let (before, after) = rest.split_once(mark.text.as_str()).unwrap_or((rest, ""));
            chunks.push(before.to_string());
            rest = after;
        }
        chunks.push(rest.to_string());
        marks.extend(line_marks);
    }
    chunks.retain(|c| !c.is_empty());
    (chunks, marks)
}

/// phonemizer's `Punctuation.restore` with a one-space word separator and
/// `strip=False`: the phonemized pieces (each ending in a space) with the
/// marks put back, one string per line.
pub fn restore(mut text: Vec<String>, marks: &[Mark]) -> Vec<String> {
    text.reverse(); // popped from the end = taken from the front
    let mut marks = marks.iter().peekable();
    let mut out = Vec::new();
    let mut line = 0;
    loop {
        let Some(&mark) = marks.peek() else {
            while let Some(mut piece) = text.pop() {
                if !piece.ends_with(' ') {
                    piece.push(' ');
                }
                out.push(piece);
            }
            break;
        };
        if text.is_empty() {
            out.push(marks.map(|m| m.text.as_str()).collect());
            break;
        }
        if mark.line != line {
            out.extend(text.pop());
            line += 1;
            continue;
        }
        marks.next();
        let Some(first) = text.last_mut() else {
            continue;
        };
        if first.ends_with(' ') {
            first.pop();
        }
        let spaced = |s: &str| {
            if s.ends_with(' ') {
                s.to_string()
            } else {
                format!("{s} ")
            }
        };
        match mark.position {
            Position::Begin => *first = format!("{}{first}", mark.text),
            Position::End => {
                let piece = text.pop().unwrap_or_default();
                out.push(spaced(&format!("{piece}{}", mark.text)));
                line += 1;
            }
            Position::Alone => {
                out.push(spaced(&mark.text));
                line += 1;
            }
            Position::Inside => {
                let piece = text.pop().unwrap_or_default();
                match text.last_mut() {
                    Some(next) => *next = format!("{piece}{}{next}", mark.text),
                    None => text.push(format!("{piece}{}", mark.text)),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_and_marks(line: &str) -> (Vec<String>, Vec<(String, Position)>) {
        let (chunks, marks) = preserve(&[line]);
        (
            chunks,
            marks.into_iter().map(|m| (m.text, m.position)).collect(),
        )
    }

    #[test]
    fn runs_take_their_spaces_and_keep_decimals_whole() {
        let (chunks, marks) = chunks_and_marks("Hello, world! Pay 3,50 now.");
        assert_eq!(chunks, ["Hello", "world", "Pay 3,50 now"]);
        assert_eq!(
            marks,
            [
                (", ".into(), Position::Inside),
                ("! ".into(), Position::Inside),
                (".".into(), Position::End)
            ]
        );
    }

    #[test]
    fn a_bare_mark_cuts_at_its_first_occurrence_as_phonemizer_does() {
        let (chunks, marks) = chunks_and_marks("x 1.5 y.");
        assert_eq!(chunks, ["x 1", "5 y."]);
        assert_eq!(marks, [(".".into(), Position::End)]);
    }

    #[test]
    fn leading_and_lone_marks() {
        let (chunks, marks) = chunks_and_marks("\u{a1}Hola!");
        assert_eq!(chunks, ["Hola"]);
        assert_eq!(
            marks,
            [
                ("\u{a1}".into(), Position::Begin),
                ("!".into(), Position::End)
            ]
        );
        let (chunks, marks) = chunks_and_marks("...");
        assert!(chunks.is_empty());
        assert_eq!(marks, [("...".into(), Position::Alone)]);
    }

    #[test]
    fn restore_puts_marks_back_between_pieces() {
        let (_, marks) = preserve(&["Hello, world! How are you?", "Bye"]);
        let text = vec!["a ".into(), "b ".into(), "c d ".into(), "e ".into()];
        assert_eq!(restore(text, &marks), ["a, b! c d? ", "e "]);
        let (_, marks) = preserve(&["¡Hola!"]);
        assert_eq!(restore(vec!["o ".into()], &marks), ["¡o! "]);
        let (_, marks) = preserve(&["..."]);
        assert_eq!(restore(Vec::new(), &marks), ["..."]);
    }
}

//! Long text split into sentences, so a voice can speak (and stream) one
//! sentence at a time: for the families whose front end does not split
//! text itself (MMS, Chatterbox; Piper's espeak-ng does).

/// Splits text at sentence ends (`.`, `!`, `?`, `;` followed by white space)
/// and line breaks, so long input streams sentence by sentence. Each part
/// keeps its punctuation; parts with only white space are dropped.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|&(_, n)| n.is_whitespace());
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' | ';' if next_is_space => Some(i + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            if !text[start..end].trim().is_empty() {
                parts.push(&text[start..end]);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_punctuation_before_space_and_at_line_breaks() {
        assert_eq!(
            split_sentences("Hello there. How are you?Fine!  3.14 is pi\nNext; last"),
            vec![
                "Hello there.",
                " How are you?Fine!",
                "  3.14 is pi",
                "\nNext;",
                " last"
            ]
        );
        assert!(split_sentences("  \n ").is_empty());
    }
}

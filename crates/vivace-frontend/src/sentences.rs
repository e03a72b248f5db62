//! Long text split into sentences, so a voice can speak (and stream) one
//! sentence at a time: for the families whose front end does not split
//! text itself (MMS, Chatterbox; Piper's espeak-ng does).
//!
//! Every script's sentence marks end a sentence: Latin `.` `!` `?` `;` and
//! the ellipsis before white space (so `3.14` and `e.g.x` stay whole); CJK
//! `。` `！` `？` `｡`, Arabic `؟` and Urdu `۔`, Devanagari and Bengali `।`
//! `॥`, the Armenian full stop `։`, Ethiopic `።` `፧`, the Greek question
//! mark `;` (U+037E), Burmese `။`, Khmer `។`, Tibetan `།` and `‼` `⁇` `⁈`
//! `⁉` wherever they stand. Closing quotes and brackets after a mark stay
//! with its sentence. A part longer than [`MAX_SENTENCE_CHARS`] is cut at
//! its last clause mark (`,` `،` `、` `，` `：` `；` `:` `—`) before the
//! limit, else at its last space, else at the limit, so that one huge
//! sentence cannot exhaust memory or stall a stream.

/// The longest part [`split_sentences`] returns, in characters: about 30
/// seconds of speech, far above any sentence of real text.
pub const MAX_SENTENCE_CHARS: usize = 400;

/// Marks that end a sentence only before white space or the end of text.
fn ends_before_space(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';' | '…')
}

/// Marks that end a sentence wherever they stand (their scripts need no
/// space after them, or the mark is never used inside a sentence).
fn ends_anywhere(c: char) -> bool {
    matches!(
        c,
        '。' | '！'
            | '？'
            | '｡'
            | '؟'
            | '۔'
            | '।'
            | '॥'
            | '։'
            | '።'
            | '፧'
            | '\u{37e}'
            | '။'
            | '។'
            | '།'
            | '‼'
            | '⁇'
            | '⁈'
            | '⁉'
    )
}

/// Closing quotes and brackets that belong to the sentence before them.
fn closes(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | '”'
            | '’'
            | '»'
            | '›'
            | ')'
            | ']'
            | '}'
            | '」'
            | '』'
            | '）'
            | '】'
            | '〉'
            | '》'
            | '〕'
    )
}

/// Marks between clauses, where an over-long sentence is best cut.
fn ends_clause(c: char) -> bool {
    matches!(c, ',' | '،' | '、' | '，' | '：' | '；' | ':' | '—')
}

/// Splits text at sentence ends (see the module) and line breaks, so long
/// input streams sentence by sentence. Each part keeps its punctuation;
/// parts with only white space are dropped; none is longer than
/// [`MAX_SENTENCE_CHARS`] characters.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = if c == '\n' {
            Some(i)
        } else if ends_anywhere(c) || ends_before_space(c) {
            // The mark's run (`?!`, `...`, `。」`) and the closers after it.
            let mut end = i + c.len_utf8();
            while let Some(&(j, n)) = chars.peek() {
                if closes(n) || ends_anywhere(n) || ends_before_space(n) {
                    end = j + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let at_space = chars.peek().is_none_or(|&(_, n)| n.is_whitespace());
            (ends_anywhere(c) || at_space).then_some(end)
        } else {
            None
        };
        if let Some(end) = end {
            push_bounded(&mut parts, &text[start..end]);
            start = end;
        }
    }
    push_bounded(&mut parts, &text[start..]);
    parts
}

/// Pushes `part` unless it is blank, cut into pieces of at most
/// [`MAX_SENTENCE_CHARS`] characters at clause marks or spaces.
fn push_bounded<'a>(parts: &mut Vec<&'a str>, mut part: &'a str) {
    while part.chars().count() > MAX_SENTENCE_CHARS {
        let limit = part
            .char_indices()
            .nth(MAX_SENTENCE_CHARS)
            .map_or(part.len(), |(i, _)| i);
        let head = &part[..limit];
        let cut = head
            .char_indices()
            .filter(|&(_, c)| ends_clause(c))
            .map(|(i, c)| i + c.len_utf8())
            .next_back()
            .or_else(|| {
                head.char_indices()
                    .filter(|&(i, c)| i > 0 && c.is_whitespace())
                    .map(|(i, _)| i)
                    .next_back()
            })
            .unwrap_or(limit);
        if !part[..cut].trim().is_empty() {
            parts.push(&part[..cut]);
        }
        part = &part[cut..];
    }
    if !part.trim().is_empty() {
        parts.push(part);
    }
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

    #[test]
    fn cjk_marks_end_sentences_without_spaces() {
        assert_eq!(
            split_sentences("你好！你叫什么名字？我很好。谢谢"),
            vec!["你好！", "你叫什么名字？", "我很好。", "谢谢"]
        );
        assert_eq!(
            split_sentences("元気？はい｡そうです"),
            vec!["元気？", "はい｡", "そうです"]
        );
    }

    #[test]
    fn arabic_and_urdu_marks_end_sentences() {
        assert_eq!(
            split_sentences("كيف حالك؟ أنا بخير."),
            vec!["كيف حالك؟", " أنا بخير."]
        );
        assert_eq!(
            split_sentences("یہ کتاب ہے۔وہ قلم ہے۔"),
            vec!["یہ کتاب ہے۔", "وہ قلم ہے۔"]
        );
    }

    #[test]
    fn danda_and_double_danda_end_sentences() {
        assert_eq!(
            split_sentences("मैं ठीक हूँ। आप कैसे हैं॥ धन्यवाद"),
            vec!["मैं ठीक हूँ।", " आप कैसे हैं॥", " धन्यवाद"]
        );
    }

    #[test]
    fn armenian_full_stop_ends_a_sentence() {
        assert_eq!(
            split_sentences("Բարեւ։Ինչպես ես"),
            vec!["Բարեւ։", "Ինչպես ես"]
        );
    }

    #[test]
    fn ethiopic_marks_end_sentences() {
        assert_eq!(
            split_sentences("ሰላም ነው።እንዴት ነህ፧ ደህና"),
            vec!["ሰላም ነው።", "እንዴት ነህ፧", " ደህና"]
        );
    }

    #[test]
    fn greek_question_marks_end_sentences() {
        // U+037E (the Greek question mark) anywhere; `;` (its usual
        // spelling after NFC) before a space.
        assert_eq!(
            split_sentences("Τι κάνεις\u{37e}Καλά. Εσύ; Ναι"),
            vec!["Τι κάνεις\u{37e}", "Καλά.", " Εσύ;", " Ναι"]
        );
    }

    #[test]
    fn ellipses_end_sentences_only_before_space() {
        assert_eq!(
            split_sentences("Wait... what?! Well… fine.Really"),
            vec!["Wait...", " what?!", " Well…", " fine.Really"]
        );
    }

    #[test]
    fn closing_quotes_and_brackets_stay_with_their_sentence() {
        assert_eq!(
            split_sentences("He said \"Stop.\" Then (quietly.) he left. 「はい。」次"),
            vec![
                "He said \"Stop.\"",
                " Then (quietly.)",
                " he left.",
                " 「はい。」",
                "次"
            ]
        );
        assert_eq!(
            split_sentences("«Vraiment ?» Oui."),
            vec!["«Vraiment ?»", " Oui."]
        );
    }

    #[test]
    fn long_sentences_are_cut_at_clauses_then_spaces_then_anywhere() {
        let clause = "word ".repeat(50); // 250 characters
        let text = format!("{clause}, {clause}, {clause}");
        let parts = split_sentences(&text);
        assert!(parts.len() >= 3, "{parts:?}");
        assert!(parts
            .iter()
            .all(|p| p.chars().count() <= MAX_SENTENCE_CHARS));
        assert!(parts[0].ends_with(','), "{:?}", parts[0]);
        assert_eq!(parts.concat(), text, "nothing is lost");

        let no_clauses = "word ".repeat(200);
        let parts = split_sentences(&no_clauses);
        assert!(parts
            .iter()
            .all(|p| p.chars().count() <= MAX_SENTENCE_CHARS));
        assert!(
            parts[1].starts_with(' '),
            "cut at a space: {:?}",
            &parts[1][..5]
        );
        assert_eq!(parts.concat(), no_clauses);

        let unbroken = "字".repeat(1000);
        let parts = split_sentences(&unbroken);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].chars().count(), MAX_SENTENCE_CHARS);
        assert_eq!(parts.concat(), unbroken);
    }
}

//! Long phoneme strings cut into batches Kokoro speaks in one pass, as
//! kokoro-onnx 0.6.1's `chunker.split_phonemes` cuts them: at most
//! [`MAX_PHONEMES`] code points each, cut at the least disruptive boundary
//! (sentence, then clause, then word, then mid-word), and balanced so that
//! no batch is needlessly short (docs/KOKORO_TEXT.md §3.2).

use super::punctuation::is_python_space;

/// The most phonemes Kokoro reads at once (its context, 512 less the two
/// pad tokens).
pub const MAX_PHONEMES: usize = 510;

/// Marks that end a sentence; a batch ending in one is followed by a
/// sentence pause.
const SENTENCE_MARKS: &[char] = &['.', '!', '?', '…'];
/// Marks that end a clause.
const CLAUSE_MARKS: &[char] = &[',', ';', ':'];

/// `phonemes` split at every whitespace run that follows one of `after`
/// (or at every whitespace run when `after` is `None`), the whitespace
/// dropped, as `re.split` with the chunker's boundary patterns.
fn split_at<'a>(phonemes: &'a str, after: Option<&[char]>) -> Vec<&'a str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut previous: Option<char> = None;
    let mut chars = phonemes.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let boundary = is_python_space(c)
            && after.is_none_or(|marks| previous.is_some_and(|p| marks.contains(&p)));
        if boundary {
            pieces.push(&phonemes[start..i]);
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_python_space(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            start = end;
            previous = None;
            continue;
        }
        previous = Some(c);
    }
    pieces.push(&phonemes[start..]);
    pieces
}

/// The chunker's `_atoms`: pieces of `phonemes`, each at most `max` code
/// points, cut at boundaries of kind `level` or later.
fn atoms(phonemes: &str, max: usize, level: usize, out: &mut Vec<String>) {
    if phonemes.chars().count() <= max {
        if !phonemes.is_empty() {
            out.push(phonemes.to_string());
        }
        return;
    }
    let boundaries: [Option<&[char]>; 3] = [Some(SENTENCE_MARKS), Some(CLAUSE_MARKS), None];
    for (kind, after) in boundaries.iter().enumerate().skip(level) {
        let pieces = split_at(phonemes, *after);
        if pieces.len() > 1 {
            for piece in pieces {
                atoms(piece.trim_matches(is_python_space), max, kind + 1, out);
            }
            return;
        }
    }
    // One unbroken run longer than the limit: slices of `max` code points.
    let chars: Vec<char> = phonemes.chars().collect();
    out.extend(
        chars
            .chunks(max)
            .map(|slice| slice.iter().collect::<String>()),
    );
}

/// The chunker's `_pack`: consecutive atoms grouped greedily into batches
/// of at most `limit` code points (one space between atoms), as ranges.
fn pack(lengths: &[usize], limit: usize) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (index, &length) in lengths.iter().enumerate() {
        let candidate = if index == start {
            length
        } else {
            size + 1 + length
        };
        if candidate > limit && index > start {
            batches.push(start..index);
            start = index;
            size = length;
        } else {
            size = candidate;
        }
    }
    if !lengths.is_empty() {
        batches.push(start..lengths.len());
    }
    batches
}

/// kokoro-onnx's `split_phonemes`: `phonemes` in batches of at most `max`
/// code points, as few as the greedy packing needs, with the smallest limit
/// that still needs no more (so the last batch is not a short remainder).
pub fn split_phonemes(phonemes: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut pieces = Vec::new();
    atoms(phonemes.trim_matches(is_python_space), max, 0, &mut pieces);
    if pieces.is_empty() {
        return pieces;
    }
    let lengths: Vec<usize> = pieces.iter().map(|a| a.chars().count()).collect();
    let fewest = pack(&lengths, max).len();
    let (mut low, mut high) = (lengths.iter().copied().max().unwrap_or(0), max);
    while low < high {
        let middle = (low + high) / 2;
        if pack(&lengths, middle).len() <= fewest {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    pack(&lengths, low)
        .into_iter()
        .map(|range| pieces[range].join(" "))
        .collect()
}

/// kokoro-onnx's `pause_after`: the silence after a batch ending in a
/// sentence mark (`sentence` seconds) or a clause mark (`clause`), else none.
pub fn pause_after(phonemes: &str, sentence: f32, clause: f32) -> f32 {
    match phonemes.trim_end_matches(is_python_space).chars().last() {
        Some(c) if SENTENCE_MARKS.contains(&c) => sentence,
        Some(c) if CLAUSE_MARKS.contains(&c) => clause,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_batch() {
        assert_eq!(split_phonemes("  həlˈoʊ.  ", 510), ["həlˈoʊ."]);
        assert!(split_phonemes("   ", 510).is_empty());
    }

    #[test]
    fn sentences_first_then_balanced() {
        // Three sentences of 9 code points; limit 20 packs them 2 + 1 greedily,
        // and balancing keeps two batches (19 is the smallest limit for two).
        let text = "aaaa bbb. cccc ddd. eeee fff.";
        assert_eq!(
            split_phonemes(text, 20),
            ["aaaa bbb. cccc ddd.", "eeee fff."]
        );
        // Without sentence marks the cut falls at clause marks, then words.
        assert_eq!(split_phonemes("aaa, bbb, ccc", 8), ["aaa,", "bbb, ccc"]);
        assert_eq!(split_phonemes("aaa bbb ccc ddd", 8), ["aaa bbb", "ccc ddd"]);
    }

    #[test]
    fn an_unbroken_run_is_sliced() {
        assert_eq!(split_phonemes("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn pauses_follow_the_last_mark() {
        assert_eq!(pause_after("a b. ", 0.25, 0.1), 0.25);
        assert_eq!(pause_after("a b;", 0.25, 0.1), 0.1);
        assert_eq!(pause_after("a b", 0.25, 0.1), 0.0);
    }
}

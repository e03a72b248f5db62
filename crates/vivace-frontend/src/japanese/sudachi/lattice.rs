//! Sudachi's lattice and its best path (SudachiPy 0.7, split mode C before
//! its path rewrites): at each reachable character, every dictionary word
//! that does not end inside a run of letters of one script, then the
//! unknown words of the character's categories (`MeCabOovPlugin`) and a
//! fallback symbol word (`SimpleOovPlugin`); each node keeps the cheapest
//! way to reach it, the first found on a tie.

use super::categories::{Categories, ALPHA, CYRILLIC, GREEK, NOOOVBOW, NOOOVEOW};
use super::dictionary::Dictionary;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// A dictionary entry.
    Entry(u32),
    /// An unknown word: its text is its reading.
    Unknown,
}

/// A word of the lattice.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    /// First character (an index into the edited text's characters).
    pub begin: usize,
    /// One past the last character.
    pub end: usize,
    left: i16,
    right: i16,
    cost: i16,
    /// The entry, or unknown.
    pub word: Word,
    total: i32,
    /// The best previous node: (its end, its index among the nodes ending there).
    prev: Option<(usize, usize)>,
}

/// `SimpleOovPlugin`'s word: 補助記号 with these ids and cost.
const SIMPLE_OOV: (i16, i16, i16) = (5968, 5968, 3857);

/// The best path through `chars` (the edited text's characters; `bytes`
/// its UTF-8 and `starts` each character's byte offset, with the end).
pub fn best_path(
    dictionary: &Dictionary,
    categories: &Categories,
    chars: &[char],
    bytes: &[u8],
    starts: &[usize],
) -> Vec<Node> {
    let n = chars.len();
    let cats: Vec<u32> = chars.iter().map(|&c| categories.of(c)).collect();
    // A word may end before character i (a letter may not follow a letter
    // of its own script).
    let can_begin: Vec<bool> = (0..n)
        .map(|i| {
            let prev = if i == 0 { 0 } else { cats[i - 1] };
            cats[i] & (ALPHA | GREEK | CYRILLIC) == 0 || cats[i] & prev == 0
        })
        .collect();
    let continuity = continuity(&cats);
    let char_at_byte = |b: usize| starts.binary_search(&b).ok();
    let mut ends: Vec<Vec<Node>> = vec![Vec::new(); n + 1];
    ends[0].push(Node {
        begin: 0,
        end: 0,
        left: 0,
        right: 0,
        cost: 0,
        word: Word::Unknown,
        total: 0,
        prev: None,
    });
    let insert = |ends: &mut Vec<Vec<Node>>, mut node: Node| {
        let mut best = i32::MAX;
        let mut best_prev = None;
        for (k, l) in ends[node.begin].iter().enumerate() {
            if l.total == i32::MAX {
                continue;
            }
            let cost = l
                .total
                .wrapping_add(i32::from(dictionary.connect_cost(l.right, node.left)))
                .wrapping_add(i32::from(node.cost));
            if cost < best {
                best = cost;
                best_prev = Some((node.begin, k));
            }
        }
        node.total = best;
        node.prev = best_prev;
        ends[node.end].push(node);
    };
    let (mut prefixes, mut ids) = (Vec::new(), Vec::new());
    for co in 0..n {
        if ends[co].is_empty() {
            continue;
        }
        let mut created_words = false;
        dictionary.prefixes(bytes, starts[co], &mut prefixes);
        for &(place, end_byte) in &prefixes {
            let Some(end) = char_at_byte(end_byte) else {
                continue;
            };
            if end < n && !can_begin[end] {
                continue;
            }
            dictionary.word_ids(place, &mut ids);
            for &entry in &ids {
                let Some((left, right, cost)) = dictionary.params(entry) else {
                    continue;
                };
                insert(
                    &mut ends,
                    Node {
                        begin: co,
                        end,
                        left,
                        right,
                        cost,
                        word: Word::Entry(entry),
                        total: 0,
                        prev: None,
                    },
                );
                created_words = true;
            }
        }
        let unknown = |begin: usize, end: usize, (left, right, cost): (i16, i16, i16)| Node {
            begin,
            end,
            left,
            right,
            cost,
            word: Word::Unknown,
            total: 0,
            prev: None,
        };
        // The next place a word may begin, or the end (SimpleOov's length).
        let simple_end = (co + 1..n).find(|&j| can_begin[j]).unwrap_or(n);
        let mut created = created_words;
        let can_begin_unknown =
            cats[co] & NOOOVBOW == 0 && (co == 0 || cats[co - 1] & NOOOVEOW == 0);
        if can_begin_unknown {
            let length = continuity[co];
            for bit in 0..15 {
                if cats[co] & (1 << bit) == 0 {
                    continue;
                }
                let Some(behaviour) = categories.behaviour(bit) else {
                    continue;
                };
                if !behaviour.invoke && created_words {
                    continue;
                }
                let words = categories.unknown_words(bit);
                if words.is_empty() {
                    continue;
                }
                let mut limit = length;
                if behaviour.group {
                    for w in words {
                        insert(
                            &mut ends,
                            unknown(co, co + length, (w.left, w.right, w.cost)),
                        );
                        created = true;
                    }
                    limit = length - 1;
                }
                for i in 1..=behaviour.length {
                    let sub = i.min(n - co);
                    if sub > limit {
                        break;
                    }
                    for w in words {
                        insert(&mut ends, unknown(co, co + sub, (w.left, w.right, w.cost)));
                        created = true;
                    }
                }
            }
            if !created {
                insert(&mut ends, unknown(co, simple_end, SIMPLE_OOV));
                created = true;
            }
        }
        if !created {
            insert(&mut ends, unknown(co, simple_end, SIMPLE_OOV));
        }
    }
    // EOS: left id 0, cost 0.
    let mut best = i32::MAX;
    let mut at = None;
    for (k, l) in ends[n].iter().enumerate() {
        if l.total == i32::MAX {
            continue;
        }
        let cost = l
            .total
            .wrapping_add(i32::from(dictionary.connect_cost(l.right, 0)));
        if cost < best {
            best = cost;
            at = Some((n, k));
        }
    }
    let mut path = Vec::new();
    while let Some((end, k)) = at {
        if end == 0 {
            break;
        }
        let Some(node) = ends[end].get(k) else {
            break;
        };
        path.push(*node);
        at = node.prev;
    }
    path.reverse();
    path
}

/// `cat_continuous_len` with SudachiPy's quirk: the length of the run of
/// characters sharing a category with the first, counted down inside the
/// run rather than computed again.
fn continuity(cats: &[u32]) -> Vec<usize> {
    let n = cats.len();
    let mut out = Vec::with_capacity(n);
    let mut length = 1;
    for start in 0..n {
        if length > 1 {
            length -= 1;
            out.push(length);
            continue;
        }
        let mut common = cats[start];
        length = 1;
        while start + length < n {
            common &= cats[start + length];
            if common == 0 {
                break;
            }
            length += 1;
        }
        out.push(length);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::continuity;

    #[test]
    fn continuity_counts_down_inside_a_run() {
        // Three of a kind then one other: 3, 2, 1, then 1.
        assert_eq!(continuity(&[4, 4 | 8, 4, 16]), vec![3, 2, 1, 1]);
        assert!(continuity(&[]).is_empty());
    }
}

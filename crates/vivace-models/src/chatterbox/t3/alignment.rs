//! The multilingual T3's alignment-based stopping (the reference's
//! `AlignmentStreamAnalyzer`, chatterbox-tts 0.1.7): three attention heads
//! of the backbone follow the text as speech is generated. From their
//! weights over the text positions it tracks where in the text the speech
//! is, keeps the stop token away until the end of the text is near, and
//! forces it on a long tail, a repetition of earlier text, or the same
//! token twice in a row.

use crate::nn::cpu_ops::argmax;

/// The heads that align speech with text in the published multilingual T3
/// (`LLAMA_ALIGNED_HEADS`: (layer, head)).
pub const LLAMA_ALIGNED_HEADS: [(usize, usize); 3] = [(12, 15), (13, 11), (9, 2)];

/// The logit the reference writes to forbid or force a token (±2¹⁵).
const FORCE: f32 = 32768.0;

/// The aligned heads of a backbone of `layers` blocks of `heads` heads:
/// [`LLAMA_ALIGNED_HEADS`] where they exist (the published sizes), else
/// each taken modulo the sizes, so that a small test checkpoint runs the
/// same analysis (its golden script maps them the same way).
pub fn aligned_heads(layers: usize, heads: usize) -> Vec<(usize, usize)> {
    LLAMA_ALIGNED_HEADS
        .iter()
        .map(|&(l, h)| (l % layers.max(1), h % heads.max(1)))
        .collect()
}

/// What the analyzer decided at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlignmentVerdict {
    /// Activations far from the diagonal at the start (speech not started).
    pub false_start: bool,
    /// The end of the text has been reached.
    pub complete: bool,
    /// The last text tokens have held the attention too long after the end.
    pub long_tail: bool,
    /// Earlier text is attended again after the end.
    pub repetition: bool,
    /// The same token twice in a row.
    pub token_repetition: bool,
    /// The approximate text position (within the text slice).
    pub position: usize,
}

/// The analyzer's state for one sequence.
#[derive(Debug, Clone)]
pub struct AlignmentAnalyzer {
    /// The text slice `[start, end)` of the prompt positions.
    text: (usize, usize),
    /// One row per generated frame, `end − start` columns each.
    alignment: Vec<Vec<f32>>,
    frame: usize,
    text_position: usize,
    started: bool,
    started_at: Option<usize>,
    complete: bool,
    completed_at: Option<usize>,
    /// The last 8 tokens seen (BOS first).
    recent: Vec<u32>,
    stop_token: u32,
}

impl AlignmentAnalyzer {
    /// For a prompt whose text tokens (start and stop included) occupy
    /// positions `text.0..text.1`; `stop_token` is the one it forbids or
    /// forces.
    pub fn new(text: (usize, usize), stop_token: u32) -> Self {
        Self {
            text,
            alignment: Vec::new(),
            frame: 0,
            text_position: 0,
            started: false,
            started_at: None,
            complete: false,
            completed_at: None,
            recent: Vec::new(),
            stop_token,
        }
    }

    /// One step, before the repetition penalty: `weights` are the aligned
    /// heads' last forward (`queries × keys` each, row 0 of the batch, the
    /// first query at position `first_query`), `logits` the guided logits
    /// (changed in place), `last_token` the token fed last (BOS at the
    /// first step).
    pub fn step(
        &mut self,
        weights: &[(&[f32], usize)],
        first_query: usize,
        logits: &mut [f32],
        last_token: u32,
    ) -> AlignmentVerdict {
        let (i, j) = self.text;
        let s = j - i;
        // The mean of the heads over the rows this step adds: the prompt's
        // rows after the text at the first step, then the one new row.
        let mut chunk: Vec<Vec<f32>> = Vec::new();
        if let Some(&(first, queries)) = weights.first() {
            let keys = first.len().checked_div(queries).unwrap_or(0);
            let rows = match self.frame {
                // The prompt's rows after the text, wherever the forward
                // that fed them started (a cached prefix before it).
                0 => j.saturating_sub(first_query).min(queries)..queries,
                _ => queries.saturating_sub(1)..queries,
            };
            for r in rows {
                let row: Vec<f32> = (i..j)
                    .map(|c| {
                        let sum: f32 = weights
                            .iter()
                            .map(|(w, _)| w.get(r * keys + c).copied().unwrap_or(0.0))
                            .sum();
                        sum / weights.len() as f32
                    })
                    .collect();
                chunk.push(row);
            }
        }
        // Monotonic masking: nothing past the frame count.
        for row in chunk.iter_mut() {
            row.iter_mut().skip(self.frame + 1).for_each(|x| *x = 0.0);
        }
        let current = chunk.last().map(|row| argmax(row)).unwrap_or(0);
        self.alignment.extend(chunk);
        let t = self.alignment.len();

        let jump = current as i64 - self.text_position as i64;
        if -4 < jump && jump < 7 {
            self.text_position = current;
        }
        let a = &self.alignment;
        let max_over = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
            a[rows]
                .iter()
                .flat_map(|row| row[cols.clone()].iter().copied())
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let false_start = !self.started
            && (max_over(t.saturating_sub(2)..t, s.saturating_sub(2)..s) > 0.1
                || max_over(0..t, 0..s.min(4)) < 0.5);
        self.started = !false_start;
        if self.started && self.started_at.is_none() {
            self.started_at = Some(t);
        }
        self.complete = self.complete || self.text_position + 3 >= s;
        if self.complete && self.completed_at.is_none() {
            self.completed_at = Some(t);
        }
        let after = self.completed_at.unwrap_or(t).min(t);
        let long_tail = self.complete
            && (s.saturating_sub(3)..s)
                .map(|c| a[after..].iter().map(|row| row[c]).sum::<f32>())
                .fold(f32::NEG_INFINITY, f32::max)
                >= 5.0;
        // Rows of a text shorter than 6 have no earlier text to repeat
        // (the reference raises on the empty reduction there).
        let repetition = self.complete
            && a[after..]
                .iter()
                .map(|row| {
                    row[..s.saturating_sub(5)]
                        .iter()
                        .copied()
                        .fold(f32::NEG_INFINITY, f32::max)
                        .max(0.0)
                })
                .sum::<f32>()
                > 5.0;

        self.recent.push(last_token);
        if self.recent.len() > 8 {
            self.recent.remove(0);
        }
        let n = self.recent.len();
        let token_repetition = n >= 3 && self.recent[n - 1] == self.recent[n - 2];
        if token_repetition {
            tracing::debug!(token = last_token, "the same speech token twice in a row");
        }

        let stop = self.stop_token as usize;
        if current + 3 < s && s > 5 {
            if let Some(l) = logits.get_mut(stop) {
                *l = -FORCE;
            }
        }
        if long_tail || repetition || token_repetition {
            tracing::debug!(
                long_tail,
                repetition,
                token_repetition,
                "alignment: forcing the stop token"
            );
            logits.iter_mut().for_each(|l| *l = -FORCE);
            if let Some(l) = logits.get_mut(stop) {
                *l = FORCE;
            }
        }
        self.frame += 1;
        AlignmentVerdict {
            false_start,
            complete: self.complete,
            long_tail,
            repetition,
            token_repetition,
            position: self.text_position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights for one query row over `keys` keys, text at `text`, with
    /// all the mass on text column `at`.
    fn row(keys: usize, text: (usize, usize), at: usize) -> Vec<f32> {
        let mut w = vec![0.0; keys];
        w[text.0 + at] = 1.0;
        w
    }

    #[test]
    fn the_stop_token_is_held_back_until_the_text_end_is_near() {
        let text = (3, 13); // 10 text positions
        let mut analyzer = AlignmentAnalyzer::new(text, 2);
        // Prefill: 13 prompt rows + 2 BOS rows, attending text column 0.
        let mut prefill = Vec::new();
        for _ in 0..15 {
            prefill.extend(row(15, text, 0));
        }
        let mut logits = vec![0.0; 4];
        let v = analyzer.step(&[(&prefill, 15)], 0, &mut logits, 9);
        assert_eq!(logits[2], -FORCE, "stop forbidden at the start of the text");
        assert_eq!(v.position, 0);
        assert!(!v.complete);
        // The speech moves through the text one column per frame.
        let mut last = v;
        for frame in 1..9 {
            let mut logits = vec![0.0; 4];
            let w = row(15 + frame, text, frame);
            last = analyzer.step(&[(&w, 1)], 15 + frame, &mut logits, frame as u32 + 10);
            let near_end = frame + 3 >= 10;
            assert_eq!(logits[2] == -FORCE, !near_end, "frame {frame}");
        }
        assert!(last.complete && last.position == 8);
    }

    #[test]
    fn a_prefill_after_a_cached_prefix_aligns_as_a_whole_one() {
        // Rows 0..15 in one forward, or rows 5..15 after 5 cached ones:
        // the analyzer reads the same rows (those after the text).
        let text = (3, 13);
        let rows = |from: usize| -> Vec<f32> {
            (from..15)
                .flat_map(|r| row(15, text, if r >= 13 { r - 13 + 1 } else { 0 }))
                .collect()
        };
        let (whole, split) = (rows(0), rows(5));
        let mut a = AlignmentAnalyzer::new(text, 2);
        let mut b = AlignmentAnalyzer::new(text, 2);
        let (mut la, mut lb) = (vec![0.0; 4], vec![0.0; 4]);
        let va = a.step(&[(&whole, 15)], 0, &mut la, 9);
        let vb = b.step(&[(&split, 10)], 5, &mut lb, 9);
        assert_eq!((va, la), (vb, lb));
        // The same alignment rows kept (two: the BOS rows after the text).
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.alignment.len(), 2);
    }

    #[test]
    fn the_same_token_twice_forces_the_stop() {
        let text = (0, 4);
        let mut analyzer = AlignmentAnalyzer::new(text, 1);
        let w = row(6, text, 0);
        let mut logits = vec![0.5; 3];
        // BOS, then a token: no repetition yet.
        analyzer.step(&[(&w, 1)], 0, &mut logits, 7);
        assert_eq!(logits, vec![0.5; 3]);
        analyzer.step(&[(&w, 1)], 0, &mut logits, 5);
        assert_eq!(logits, vec![0.5; 3]);
        let v = analyzer.step(&[(&w, 1)], 0, &mut logits, 5);
        assert!(v.token_repetition);
        assert_eq!(logits, vec![-FORCE, FORCE, -FORCE]);
    }

    #[test]
    fn small_backbones_take_the_heads_modulo_their_sizes() {
        assert_eq!(aligned_heads(30, 16), LLAMA_ALIGNED_HEADS.to_vec());
        assert_eq!(aligned_heads(2, 1), vec![(0, 0), (1, 0), (1, 0)]);
    }
}

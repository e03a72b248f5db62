//! Token sampling for autoregressive models: repetition penalty,
//! temperature, top-k, top-p and min-p, applied in the order a model's
//! reference applies them, then one draw from an injectable random source.
//!
//! Each step follows the rule of the Hugging Face `transformers` logits
//! processor of the same name (`RepetitionPenaltyLogitsProcessor`,
//! `TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`,
//! `MinPLogitsWarper`, each keeping at least one token), which is what the
//! reference implementations of Chatterbox and the others call. The order
//! differs between models (Chatterbox: penalty, temperature, min-p, top-p;
//! Chatterbox Turbo: temperature, top-k, top-p, penalty), so a [`Sampler`]
//! is an ordered list of [`Warp`]s.

/// One transformation of the logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warp {
    /// Tokens already generated: positive logits divided by the penalty,
    /// negative ones multiplied (1: off).
    RepetitionPenalty(f32),
    /// Logits divided by the temperature.
    Temperature(f32),
    /// Only the `k` highest logits (and ties with the k-th) stay.
    TopK(usize),
    /// The smallest set of most likely tokens whose probability reaches `p`
    /// stays (1: off).
    TopP(f32),
    /// Tokens less likely than `p` times the most likely one are removed (0: off).
    MinP(f32),
}

/// Why a sampler cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplingError {
    /// A parameter outside its range; names it and the range.
    #[error("invalid sampling parameter: {0}")]
    InvalidParameter(String),
    /// No logits, or none finite.
    #[error("the model gave no finite logits to sample from")]
    NoLogits,
}

/// A source of uniform numbers in `[0, 1)`: injectable, so a test or a
/// parity check can replay a reference's draws exactly.
pub trait UniformSource {
    /// The next number in `[0, 1)`.
    fn next_uniform(&mut self) -> f64;
}

/// A seedable generator (SplitMix64): the same seed, the same draws, on
/// every machine.
#[derive(Debug, Clone)]
pub struct SeededSource {
    state: u64,
}

impl SeededSource {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl UniformSource for SeededSource {
    fn next_uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits: every value is exactly representable.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A fresh seed when a request gives none: the clock and a counter, so two
/// calls in the same instant still differ.
pub fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `n` standard normal numbers from `source` by the Box–Muller transform
/// (two per pair of draws), in f32.
pub fn gaussian(source: &mut impl UniformSource, n: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(n + 1);
    while values.len() < n {
        // 1 − u is in (0, 1]: its logarithm is finite.
        let radius = (-2.0 * (1.0 - source.next_uniform()).ln()).sqrt();
        let angle = std::f64::consts::TAU * source.next_uniform();
        values.push((radius * angle.cos()) as f32);
        values.push((radius * angle.sin()) as f32);
    }
    values.truncate(n);
    values
}

/// The warps of one model, in its order; no warps and a temperature of 0
/// (`greedy`) pick the most likely token.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sampler {
    warps: Vec<Warp>,
}

impl Sampler {
    /// Applies `warps` in order, then draws; checks each parameter's range.
    pub fn new(warps: Vec<Warp>) -> Result<Self, SamplingError> {
        for warp in &warps {
            let bad = |what: &str| Err(SamplingError::InvalidParameter(what.to_string()));
            match *warp {
                Warp::RepetitionPenalty(p) if !(p.is_finite() && p > 0.0) => {
                    return bad("the repetition penalty must be a positive number (1: off)")
                }
                Warp::Temperature(t) if !(t.is_finite() && t >= 0.0) => {
                    return bad("the temperature must be 0 (greedy) or positive")
                }
                Warp::TopK(0) => return bad("top-k must be at least 1"),
                Warp::TopP(p) if !(p > 0.0 && p <= 1.0) => {
                    return bad("top-p must be above 0 and at most 1 (1: off)")
                }
                Warp::MinP(p) if !(0.0..=1.0).contains(&p) => {
                    return bad("min-p must be between 0 (off) and 1")
                }
                _ => {}
            }
        }
        Ok(Self { warps })
    }

    /// Applies the warps to `logits` in place; `previous` are the tokens
    /// generated so far (for the repetition penalty). Removed tokens become
    /// negative infinity. A temperature of 0 is skipped (see [`Sampler::sample`]).
    pub fn warp(&self, logits: &mut [f32], previous: &[u32]) {
        for warp in &self.warps {
            match *warp {
                Warp::RepetitionPenalty(p) => repetition_penalty(logits, previous, p),
                Warp::Temperature(t) if t > 0.0 => logits.iter_mut().for_each(|l| *l /= t),
                Warp::Temperature(_) => {}
                Warp::TopK(k) => top_k(logits, k),
                Warp::TopP(p) => top_p(logits, p),
                Warp::MinP(p) => min_p(logits, p),
            }
        }
    }

    /// Warps `logits` and draws a token from their softmax with `source`
    /// (or takes the most likely one at temperature 0).
    pub fn sample(
        &self,
        logits: &mut [f32],
        previous: &[u32],
        source: &mut dyn UniformSource,
    ) -> Result<u32, SamplingError> {
        self.warp(logits, previous);
        if self.warps.contains(&Warp::Temperature(0.0)) {
            return argmax(logits).ok_or(SamplingError::NoLogits);
        }
        let probs = softmax(logits).ok_or(SamplingError::NoLogits)?;
        let target = source.next_uniform();
        let mut cumulative = 0f64;
        let mut last_possible = None;
        for (token, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                cumulative += p;
                last_possible = Some(token as u32);
                if target < cumulative {
                    return Ok(token as u32);
                }
            }
        }
        // Rounding left the total a hair under 1: the last possible token.
        last_possible.ok_or(SamplingError::NoLogits)
    }
}

/// The index of the largest finite logit (the first among equals).
fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

/// Probabilities (in f64) of `logits`; `None` when no logit is finite.
fn softmax(logits: &[f32]) -> Option<Vec<f64>> {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return None;
    }
    let exps: Vec<f64> = logits
        .iter()
        .map(|&l| match l.is_finite() {
            true => f64::from(l - max).exp(),
            false => 0.0,
        })
        .collect();
    let sum: f64 = exps.iter().sum();
    Some(exps.into_iter().map(|e| e / sum).collect())
}

/// Hugging Face's rule: each distinct previous token's logit is divided by
/// `penalty` when positive, multiplied when negative.
fn repetition_penalty(logits: &mut [f32], previous: &[u32], penalty: f32) {
    let mut seen = vec![false; logits.len()];
    for &token in previous {
        let Some(l) = logits.get_mut(token as usize) else {
            continue;
        };
        if std::mem::replace(&mut seen[token as usize], true) {
            continue;
        }
        *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
    }
}

/// Removes logits below the k-th largest.
fn top_k(logits: &mut [f32], k: usize) {
    if k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    logits
        .iter_mut()
        .filter(|l| **l < kth)
        .for_each(|l| *l = f32::NEG_INFINITY);
}

/// Hugging Face's rule: in ascending order of probability, tokens whose
/// cumulative probability is at most `1 - p` are removed; the most likely
/// token always stays.
fn top_p(logits: &mut [f32], p: f32) {
    if p >= 1.0 {
        return;
    }
    let Some(probs) = softmax(logits) else {
        return;
    };
    let mut order: Vec<usize> = (0..logits.len()).collect();
    // Stable ascending sort of the logits, as torch.sort on the reference's.
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let mut cumulative = 0f64;
    let threshold = 1.0 - f64::from(p);
    let last = order.len().saturating_sub(1);
    for (rank, &i) in order.iter().enumerate() {
        cumulative += probs[i];
        if cumulative <= threshold && rank < last {
            logits[i] = f32::NEG_INFINITY;
        }
    }
}

/// Hugging Face's rule: tokens with probability below `p` times the top
/// probability are removed; the most likely token always stays.
fn min_p(logits: &mut [f32], p: f32) {
    if p <= 0.0 {
        return;
    }
    let Some(probs) = softmax(logits) else {
        return;
    };
    let top = probs.iter().copied().fold(0f64, f64::max);
    let keep = argmax(logits);
    let threshold = f64::from(p) * top;
    for (i, l) in logits.iter_mut().enumerate() {
        if probs[i] < threshold && Some(i as u32) != keep {
            *l = f32::NEG_INFINITY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    /// Replays fixed draws.
    struct Draws(Vec<f64>);

    impl UniformSource for Draws {
        fn next_uniform(&mut self) -> f64 {
            self.0.remove(0)
        }
    }

    #[test]
    fn the_repetition_penalty_divides_positive_and_multiplies_negative_logits_once() {
        let mut logits = [2.0, -2.0, 1.0, 0.5];
        // Token 0 twice: penalized once, as Hugging Face's gather/scatter does.
        repetition_penalty(&mut logits, &[0, 1, 0, 9], 2.0);
        assert_eq!(logits, [1.0, -4.0, 1.0, 0.5]);
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p() {
        // softmax([1, 2, 3, 4]) = [0.032, 0.087, 0.237, 0.644]; ascending
        // cumulative 0.032, 0.119, 0.356, 1.0.
        let mut logits = [1.0, 2.0, 3.0, 4.0];
        top_p(&mut logits, 0.5);
        assert_eq!(logits, [NEG, NEG, NEG, 4.0]);
        let mut logits = [1.0, 2.0, 3.0, 4.0];
        top_p(&mut logits, 0.7);
        assert_eq!(logits, [NEG, NEG, 3.0, 4.0]);
        let mut logits = [1.0, 2.0, 3.0, 4.0];
        top_p(&mut logits, 0.9);
        assert_eq!(logits, [NEG, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn min_p_removes_tokens_below_a_fraction_of_the_top_one() {
        // Probabilities relative to the top: e^-3, e^-2, e^-1, 1 = 0.05, 0.135, 0.368, 1.
        let mut logits = [1.0, 2.0, 3.0, 4.0];
        min_p(&mut logits, 0.1);
        assert_eq!(logits, [NEG, 2.0, 3.0, 4.0]);
        let mut logits = [1.0, 2.0, 3.0, 4.0];
        min_p(&mut logits, 1.0);
        assert_eq!(logits, [NEG, NEG, NEG, 4.0]);
    }

    #[test]
    fn top_k_keeps_the_k_largest_and_their_ties() {
        let mut logits = [1.0, 3.0, 2.0, 3.0, 0.0];
        top_k(&mut logits, 1);
        assert_eq!(logits, [NEG, 3.0, NEG, 3.0, NEG]);
        let mut logits = [1.0, 3.0, 2.0];
        top_k(&mut logits, 2);
        assert_eq!(logits, [NEG, 3.0, 2.0]);
    }

    #[test]
    fn a_draw_inverts_the_cumulative_distribution() {
        // Temperature 1, no cut: probabilities 0.25 each for equal logits.
        let sampler = Sampler::new(vec![Warp::Temperature(1.0)]).expect("sampler");
        let mut draws = Draws(vec![0.0, 0.26, 0.74, 0.9999]);
        let picked: Vec<u32> = (0..4)
            .map(|_| {
                sampler
                    .sample(&mut [0.5; 4], &[], &mut draws)
                    .expect("token")
            })
            .collect();
        assert_eq!(picked, [0, 1, 2, 3]);
        // Removed tokens are never drawn.
        let sampler = Sampler::new(vec![Warp::TopK(1)]).expect("sampler");
        let token = sampler
            .sample(&mut [0.0, 5.0, 1.0], &[], &mut Draws(vec![0.0]))
            .expect("token");
        assert_eq!(token, 1);
    }

    #[test]
    fn the_order_of_the_warps_is_the_models() {
        let penalty_first =
            Sampler::new(vec![Warp::RepetitionPenalty(4.0), Warp::MinP(0.5)]).expect("sampler");
        let min_p_first =
            Sampler::new(vec![Warp::MinP(0.5), Warp::RepetitionPenalty(4.0)]).expect("sampler");
        // Penalty first: token 0 falls to 1.0, token 1 leads, and token 0
        // (e^-2 of it) is cut while token 2 (e^-0.1) stays.
        let mut a = [4.0, 3.0, 2.9];
        penalty_first.warp(&mut a, &[0]);
        assert_eq!(a, [NEG, 3.0, 2.9]);
        // Min-p first: token 0 leads, the others (e^-1, e^-1.1) are cut,
        // then token 0 is penalized.
        let mut b = [4.0, 3.0, 2.9];
        min_p_first.warp(&mut b, &[0]);
        assert_eq!(b, [1.0, NEG, NEG]);
    }

    #[test]
    fn greedy_takes_the_most_likely_and_bad_parameters_are_refused() {
        let sampler = Sampler::new(vec![Warp::Temperature(0.0)]).expect("sampler");
        let mut source = SeededSource::new(7);
        assert_eq!(
            sampler.sample(&mut [0.1, 0.9, 0.3], &[], &mut source),
            Ok(1)
        );
        for bad in [
            Warp::Temperature(-1.0),
            Warp::TopK(0),
            Warp::TopP(0.0),
            Warp::MinP(1.5),
            Warp::RepetitionPenalty(f32::NAN),
        ] {
            assert!(Sampler::new(vec![bad]).is_err(), "{bad:?}");
        }
        let sampler = Sampler::new(Vec::new()).expect("sampler");
        assert_eq!(
            sampler.sample(&mut [NEG, NEG], &[], &mut source),
            Err(SamplingError::NoLogits)
        );
    }

    #[test]
    fn the_seeded_source_is_uniform_and_reproducible() {
        let mut a = SeededSource::new(42);
        let mut b = SeededSource::new(42);
        let draws: Vec<f64> = (0..10_000).map(|_| a.next_uniform()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert_eq!(
            draws[..3],
            [b.next_uniform(), b.next_uniform(), b.next_uniform()]
        );
    }
}

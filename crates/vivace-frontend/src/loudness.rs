//! Integrated loudness (ITU-R BS.1770) as pyloudnorm measures it, and the
//! gain that brings a recording to a target: what Chatterbox Turbo does to
//! its reference before cloning (−27 LUFS).
//!
//! K-weighting is pyloudnorm's pair of RBJ biquads (a 4 dB high shelf at
//! 1500 Hz, a high pass at 38 Hz) designed for the signal's own rate; the
//! mean square is taken over 400 ms blocks every 100 ms; blocks under
//! −70 LUFS, then those 10 LU under the mean of the rest, are dropped.

/// Block length in seconds.
const BLOCK: f64 = 0.4;
/// Block overlap.
const OVERLAP: f64 = 0.75;
/// The absolute gate, LUFS.
const ABSOLUTE_GATE: f64 = -70.0;

/// One biquad, normalized (a0 = 1).
struct Biquad {
    b: [f64; 3],
    a: [f64; 3],
}

impl Biquad {
    /// pyloudnorm's `IIRfilter(G, Q, fc, rate, kind)` for the two kinds
    /// K-weighting uses.
    fn design(gain_db: f64, q: f64, fc: f64, rate: f64, high_shelf: bool) -> Self {
        let a = 10f64.powf(gain_db / 40.0);
        let w0 = 2.0 * std::f64::consts::PI * (fc / rate);
        let alpha = w0.sin() / (2.0 * q);
        let cos = w0.cos();
        let (b, den) = match high_shelf {
            true => {
                let s = 2.0 * a.sqrt() * alpha;
                (
                    [
                        a * ((a + 1.0) + (a - 1.0) * cos + s),
                        -2.0 * a * ((a - 1.0) + (a + 1.0) * cos),
                        a * ((a + 1.0) + (a - 1.0) * cos - s),
                    ],
                    [
                        (a + 1.0) - (a - 1.0) * cos + s,
                        2.0 * ((a - 1.0) - (a + 1.0) * cos),
                        (a + 1.0) - (a - 1.0) * cos - s,
                    ],
                )
            }
            false => (
                [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0],
                [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
            ),
        };
        let a0 = den[0];
        Self {
            b: b.map(|v| v / a0),
            a: den.map(|v| v / a0),
        }
    }

    /// `scipy.signal.lfilter(b, a, x)` (direct form II transposed).
    fn apply(&self, x: &mut [f64]) {
        let (mut z1, mut z2) = (0f64, 0f64);
        for v in x.iter_mut() {
            let input = *v;
            let out = self.b[0] * input + z1;
            z1 = self.b[1] * input - self.a[1] * out + z2;
            z2 = self.b[2] * input - self.a[2] * out;
            *v = out;
        }
    }
}

/// The integrated loudness of mono `samples` at `rate` in LUFS, or `None`
/// when they are shorter than one 400 ms block (pyloudnorm refuses them).
/// Silence is negative infinity.
pub fn integrated_loudness(samples: &[f32], rate: u32) -> Option<f64> {
    let fs = f64::from(rate);
    if rate == 0 || (samples.len() as f64) <= BLOCK * fs {
        return None;
    }
    let mut x: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
    Biquad::design(4.0, std::f64::consts::FRAC_1_SQRT_2, 1500.0, fs, true).apply(&mut x);
    Biquad::design(0.0, 0.5, 38.0, fs, false).apply(&mut x);
    let step = 1.0 - OVERLAP;
    let duration = x.len() as f64 / fs;
    let blocks = (((duration - BLOCK) / (BLOCK * step)).round() as i64 + 1).max(0) as usize;
    let z: Vec<f64> = (0..blocks)
        .map(|j| {
            let lo = (BLOCK * (j as f64 * step) * fs) as usize;
            let hi = ((BLOCK * (j as f64 * step + 1.0) * fs) as usize).min(x.len());
            let sum: f64 = x[lo.min(hi)..hi].iter().map(|v| v * v).sum();
            sum / (BLOCK * fs)
        })
        .collect();
    let loudness = |power: f64| -0.691 + 10.0 * power.log10();
    let block_loudness: Vec<f64> = z.iter().map(|&p| loudness(p)).collect();
    let mean_over = |keep: &dyn Fn(f64) -> bool| -> f64 {
        let kept: Vec<f64> = z
            .iter()
            .zip(&block_loudness)
            .filter(|(_, &l)| keep(l))
            .map(|(&p, _)| p)
            .collect();
        match kept.is_empty() {
            true => f64::NAN,
            false => kept.iter().sum::<f64>() / kept.len() as f64,
        }
    };
    let relative_gate = loudness(mean_over(&|l| l >= ABSOLUTE_GATE)) - 10.0;
    let gated = mean_over(&|l| l > relative_gate && l > ABSOLUTE_GATE);
    // numpy's nan_to_num: no block left is a power of 0 (−∞ LUFS).
    Some(loudness(if gated.is_nan() { 0.0 } else { gated }))
}

/// `samples` scaled to `target` LUFS, as Turbo's `norm_loudness` does it;
/// unchanged when the loudness cannot be measured or the gain is not a
/// finite positive number (silence, too short).
pub fn normalize_loudness(samples: &[f32], rate: u32, target: f64) -> Vec<f32> {
    let Some(lufs) = integrated_loudness(samples, rate) else {
        return samples.to_vec();
    };
    let gain = 10f64.powf((target - lufs) / 20.0);
    if !(gain.is_finite() && gain > 0.0) {
        return samples.to_vec();
    }
    let gain = gain as f32;
    samples.iter().map(|&s| s * gain).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tools/make_loudness_goldens.py`'s `signal`.
    fn signal(rate: u32, seconds: f64, freqs: &[f64], amp: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        let mut x: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let mut v = 0.0;
                for (k, f) in freqs.iter().enumerate() {
                    v += (2.0 * std::f64::consts::PI * f * t + k as f64).sin() / (k + 1) as f64;
                }
                amp * v * (0.5 + 0.5 * (2.0 * std::f64::consts::PI * 0.7 * t).sin())
            })
            .collect();
        for v in x.iter_mut().skip(n / 3).take(rate as usize) {
            *v *= 0.001;
        }
        x.into_iter().map(|v| v as f32).collect()
    }

    #[derive(serde::Deserialize)]
    struct Case {
        rate: u32,
        seconds: f64,
        freqs: Vec<f64>,
        amp: f64,
        lufs: f64,
        normalized_head: Vec<f64>,
        normalized_sum: f64,
    }

    #[test]
    fn loudness_and_gain_match_pyloudnorm() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loudness.json");
        let cases: Vec<Case> =
            serde_json::from_str(&std::fs::read_to_string(path).expect("goldens")).expect("parse");
        assert_eq!(cases.len(), 3);
        for c in &cases {
            let x = signal(c.rate, c.seconds, &c.freqs, c.amp);
            let lufs = integrated_loudness(&x, c.rate).expect("long enough");
            assert!(
                (lufs - c.lufs).abs() < 1e-6,
                "{} Hz: {lufs} vs {}",
                c.rate,
                c.lufs
            );
            let y = normalize_loudness(&x, c.rate, -27.0);
            for (g, w) in y.iter().zip(&c.normalized_head) {
                assert!(
                    (f64::from(*g) - w).abs() < 1e-6 * w.abs().max(1e-3),
                    "{g} vs {w}"
                );
            }
            let sum: f64 = y.iter().map(|v| f64::from(v.abs())).sum();
            assert!(
                (sum - c.normalized_sum).abs() < 1e-4 * c.normalized_sum,
                "{sum}"
            );
        }
    }

    #[test]
    fn silence_and_short_input_are_left_alone() {
        assert_eq!(integrated_loudness(&[0.1; 100], 16_000), None);
        let silence = vec![0f32; 16_000];
        assert_eq!(
            integrated_loudness(&silence, 16_000),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(normalize_loudness(&silence, 16_000, -27.0), silence);
    }
}

//! Kaldi's filterbank features as `torchaudio.compliance.kaldi.fbank`
//! computes them with its defaults: 25 ms frames every 10 ms that fit whole
//! (`snip_edges`), DC offset removed per frame, pre-emphasis 0.97, the
//! Povey window, a 512-point FFT, the power spectrum, HTK-scale triangular
//! mel bands from 20 Hz to Nyquist, and the natural log floored at f32's
//! epsilon. No dither (torchaudio's default). CAMPPlus, the speaker encoder
//! of Chatterbox's S3Gen, reads 80 bands of these at 16 kHz, each band's
//! mean over the utterance subtracted ([`mean_normalized`]).
//!
//! Computed in f64 (`realfft`); the reference runs in f32.

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Frame length and shift at 16 kHz (25 ms, 10 ms), and the padded FFT size.
const FRAME: usize = 400;
const SHIFT: usize = 160;
const FFT: usize = 512;
const PREEMPHASIS: f64 = 0.97;
const LOW_HZ: f64 = 20.0;
/// `torch.finfo(torch.float32).eps`, the log's floor.
const EPSILON: f64 = 1.192_092_9e-7;

/// Kaldi's filterbank at 16 kHz with `n_mels` bands.
#[derive(Clone)]
pub struct KaldiFbank {
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
    /// `[n_mels, FFT / 2 + 1]` (the Nyquist bin's weight is 0, as in Kaldi).
    banks: Vec<f64>,
    n_mels: usize,
}

impl std::fmt::Debug for KaldiFbank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KaldiFbank")
            .field("n_mels", &self.n_mels)
            .finish_non_exhaustive()
    }
}

impl KaldiFbank {
    /// The filterbank for 16 kHz audio with `n_mels` bands (more than 3).
    pub fn new(n_mels: usize) -> Self {
        // Povey's window: a symmetric Hann window to the power 0.85.
        let window = (0..FRAME)
            .map(|n| (0.5 - 0.5 * (2.0 * PI * n as f64 / (FRAME - 1) as f64).cos()).powf(0.85))
            .collect();
        Self {
            window,
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(FFT),
            banks: htk_banks(n_mels, 16_000.0),
            n_mels,
        }
    }

    /// Frames in `len` samples: `1 + (len − 400) / 160`, none under 400.
    pub fn frames(len: usize) -> usize {
        match len >= FRAME {
            true => 1 + (len - FRAME) / SHIFT,
            false => 0,
        }
    }

    /// Log filterbank energies of 16 kHz `samples`, row-major `[frames, n_mels]`.
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let bins = FFT / 2 + 1;
        let frames = Self::frames(samples.len());
        let mut out = Vec::with_capacity(frames * self.n_mels);
        let mut frame = vec![0f64; FFT];
        let mut raw = [0f64; FRAME];
        let mut spectrum = vec![Complex::new(0f64, 0f64); bins];
        let mut scratch = vec![Complex::new(0f64, 0f64); self.fft.get_scratch_len()];
        let mut power = vec![0f64; bins];
        for t in 0..frames {
            let src = &samples[t * SHIFT..t * SHIFT + FRAME];
            let mean = src.iter().map(|&x| f64::from(x)).sum::<f64>() / FRAME as f64;
            for (r, &x) in raw.iter_mut().zip(src) {
                *r = f64::from(x) - mean;
            }
            // Pre-emphasis against the previous sample (the first against itself).
            for n in 0..FRAME {
                let previous = raw[n.saturating_sub(1)];
                frame[n] = (raw[n] - PREEMPHASIS * previous) * self.window[n];
            }
            frame[FRAME..].fill(0.0);
            // The buffers have the plan's lengths, so the transform cannot fail.
            if self
                .fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .is_err()
            {
                spectrum.fill(Complex::new(f64::NAN, f64::NAN));
            }
            for (p, z) in power.iter_mut().zip(&spectrum) {
                *p = z.norm_sqr();
            }
            for m in 0..self.n_mels {
                let bank = &self.banks[m * bins..(m + 1) * bins];
                let energy: f64 = bank.iter().zip(&power).map(|(w, p)| w * p).sum();
                out.push(energy.max(EPSILON).ln() as f32);
            }
        }
        out
    }
}

/// `features` `[frames, n_mels]` with each band's mean over the frames
/// subtracted (CAMPPlus's input normalization).
pub fn mean_normalized(features: &[f32], n_mels: usize) -> Vec<f32> {
    if n_mels == 0 || features.is_empty() {
        return features.to_vec();
    }
    let frames = features.len() / n_mels;
    let mut mean = vec![0f64; n_mels];
    for row in features.chunks_exact(n_mels) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= frames as f64);
    features
        .chunks_exact(n_mels)
        .flat_map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, &m)| (f64::from(v) - m) as f32)
        })
        .collect()
}

/// Hz → mel on the HTK scale, as Kaldi uses it.
fn mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// Kaldi's triangular bands (`get_mel_banks` without VTLN): equally spaced
/// in mel from 20 Hz to Nyquist, weights linear in mel, `[n_mels, FFT/2 + 1]`.
fn htk_banks(n_mels: usize, sample_rate: f64) -> Vec<f64> {
    let bins = FFT / 2 + 1;
    let (lo, hi) = (mel(LOW_HZ), mel(sample_rate / 2.0));
    let delta = (hi - lo) / (n_mels + 1) as f64;
    let bin_hz = sample_rate / FFT as f64;
    let mut banks = vec![0f64; n_mels * bins];
    for m in 0..n_mels {
        let (left, centre, right) = (
            lo + m as f64 * delta,
            lo + (m + 1) as f64 * delta,
            lo + (m + 2) as f64 * delta,
        );
        // The last (Nyquist) bin keeps weight 0, as Kaldi pads it.
        for k in 0..FFT / 2 {
            let f = mel(bin_hz * k as f64);
            let up = (f - left) / (centre - left);
            let down = (right - f) / (right - centre);
            banks[m * bins + k] = up.min(down).max(0.0);
        }
    }
    banks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{read_f32, relative_l2};

    fn fixture(name: &str) -> Vec<f32> {
        read_f32("kaldi_fbank", name)
    }

    /// Against `torchaudio.compliance.kaldi.fbank(num_mel_bins=80)` and
    /// CAMPPlus's mean normalization (`tools/make_s3gen_goldens.py`).
    #[test]
    fn matches_torchaudio() {
        let input = fixture("input.f32");
        let want = fixture("fbank.f32");
        let fbank = KaldiFbank::new(80);
        let got = fbank.compute(&input);
        assert_eq!(got.len(), want.len(), "frames");
        assert_eq!(KaldiFbank::frames(input.len()) * 80, want.len());
        let rel = relative_l2(&got, &want);
        eprintln!("Kaldi fbank: relative L2 {rel:.2e}");
        assert!(rel < 1e-5, "fbank relative L2 {rel:.2e}");
        let normalized = mean_normalized(&got, 80);
        let rel = relative_l2(&normalized, &fixture("normalized.f32"));
        eprintln!("mean-normalized: relative L2 {rel:.2e}");
        assert!(rel < 1e-5, "normalized relative L2 {rel:.2e}");
        assert!(fbank.compute(&input[..399]).is_empty());
    }
}

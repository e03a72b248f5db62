//! Mel spectrograms as `librosa.feature.melspectrogram` computes them with
//! its defaults (librosa 0.11): a periodic Hann window as long as the FFT,
//! centred frames with zero padding, the power spectrum (`power = 2`), and
//! Slaney-style mel filters (`htk = False`, `norm = "slaney"`) from 0 Hz to
//! Nyquist. Not logarithmic. resemblyzer's voice encoder reads these with
//! `n_fft = 400`, `hop = 160`, 40 bands at 16 kHz. [`MelSpectrogram::s3gen`]
//! is Chatterbox S3Gen's variant: reflect padding without centring, the
//! magnitude instead of the power, bands up to 8 kHz, then a log.
//! [`MelSpectrogram::vits_linear`] is VITS's linear spectrogram
//! (`spectrogram_torch` with `center=False`, as OpenVoice's converter reads
//! it): the same framing and magnitude with no filterbank.
//!
//! The transform is a real FFT in f64 (`realfft`). A direct DFT of a
//! 400-point frame is 160 k real multiply-adds (201 bins × 400 samples, real
//! and imaginary parts) and took 30 % of an embedding's time; the FFT is a
//! few thousand operations, less than the 40 × 201 filterbank product that
//! follows it (see `docs/PERFORMANCE.md`).

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// How frames are cut from the signal.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    /// librosa's `center=True`: frame `t` centred on sample `t·hop`, zeros
    /// outside the signal; `1 + len / hop` frames.
    CentredZeros,
    /// Reflect-pad both ends by this many samples, then frames from the
    /// start (`center=False`): `1 + (len + 2·pad − n_fft) / hop` frames.
    /// Centring with PyTorch's default reflect padding is `Reflect(n_fft / 2)`.
    Reflect(usize),
}

/// What each frequency bin holds before the filterbank.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spectrum {
    /// `|X|²`.
    Power,
    /// `sqrt(|X|² + eps)`.
    Magnitude { eps: f64 },
}

/// A mel filterbank and the STFT settings it goes with.
#[derive(Clone)]
pub struct MelSpectrogram {
    n_fft: usize,
    hop: usize,
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
    /// `[n_mels, bins]`; empty for a linear spectrogram (`n_mels == bins`).
    filters: Vec<f64>,
    n_mels: usize,
    framing: Framing,
    spectrum: Spectrum,
}

/// S3Gen's mel settings (Matcha-TTS's `mel_spectrogram` as Chatterbox
/// calls it): 24 kHz, 1920-point FFT, hop 480 (50 frames/s), 80 bands up to
/// 8 kHz, reflect padding of 720 samples, natural log clamped at 1e-5.
pub const S3GEN_SAMPLE_RATE: u32 = 24_000;
const S3GEN_N_FFT: usize = 1920;
const S3GEN_HOP: usize = 480;
/// Bands of S3Gen's mel.
pub const S3GEN_MELS: usize = 80;
/// Bands of the S3 speech tokenizer's log-mel (16 kHz, Whisper-style).
pub const S3_TOKENIZER_MELS: usize = 128;

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelSpectrogram")
            .field("n_fft", &self.n_fft)
            .field("hop", &self.hop)
            .field("n_mels", &self.n_mels)
            .finish_non_exhaustive()
    }
}

impl MelSpectrogram {
    /// The spectrogram for `sample_rate`, `n_fft`, `hop` and `n_mels` bands.
    pub fn new(sample_rate: u32, n_fft: usize, hop: usize, n_mels: usize) -> Self {
        let nyquist = f64::from(sample_rate) / 2.0;
        Self::build(
            sample_rate,
            n_fft,
            hop,
            n_mels,
            nyquist,
            Framing::CentredZeros,
            Spectrum::Power,
        )
    }

    /// Chatterbox's voice-encoder mel (`voice_encoder/melspec.py`): 16 kHz,
    /// 400-point FFT, hop 160, 40 bands up to 8 kHz, the power spectrum,
    /// frames centred with reflect padding (librosa's `pad_mode="reflect"`).
    pub fn chatterbox_voice_encoder() -> Self {
        Self::build(
            16_000,
            400,
            160,
            40,
            8_000.0,
            Framing::Reflect(200),
            Spectrum::Power,
        )
    }

    /// S3Gen's mel ([`S3GEN_SAMPLE_RATE`] input; see [`MelSpectrogram::s3gen_log`]).
    pub fn s3gen() -> Self {
        Self::build(
            S3GEN_SAMPLE_RATE,
            S3GEN_N_FFT,
            S3GEN_HOP,
            S3GEN_MELS,
            8000.0,
            Framing::Reflect((S3GEN_N_FFT - S3GEN_HOP) / 2),
            Spectrum::Magnitude { eps: 1e-9 },
        )
    }

    /// VITS's linear spectrogram (`mel_processing.spectrogram_torch`, with
    /// `center=False` and the window as long as the FFT): reflect padding of
    /// `(n_fft − hop) / 2`, `sqrt(|X|² + 1e-6)` per bin, `n_fft / 2 + 1` bins
    /// a frame, no filterbank. Row-major `[frames, bins]` from
    /// [`MelSpectrogram::try_compute`].
    pub fn vits_linear(n_fft: usize, hop: usize) -> Self {
        let mut spectrogram = Self::build(
            1,
            n_fft,
            hop,
            0,
            0.5,
            Framing::Reflect(n_fft.saturating_sub(hop) / 2),
            Spectrum::Magnitude { eps: 1e-6 },
        );
        spectrogram.n_mels = n_fft / 2 + 1;
        spectrogram
    }

    /// Values per frame: the mel bands, or the bins of a linear spectrogram.
    pub fn bands(&self) -> usize {
        self.n_mels
    }

    /// The S3 speech tokenizer's mel (16 kHz; see
    /// [`MelSpectrogram::s3_tokenizer_log`]).
    pub fn s3_tokenizer() -> Self {
        Self::build(
            16_000,
            400,
            160,
            S3_TOKENIZER_MELS,
            8000.0,
            Framing::Reflect(200),
            Spectrum::Power,
        )
    }

    /// The S3 speech tokenizer's log-mel of 16 kHz `samples` (Whisper's,
    /// as Chatterbox computes it): `torch.stft` centred with reflect
    /// padding, the last frame dropped, the power through 128 Slaney bands,
    /// `log10` floored at 1e-10 and at the maximum − 8, then `(x + 4) / 4`.
    /// Row-major `[len / 160, 128]`; `None` when shorter than the
    /// reflection (201 samples).
    pub fn s3_tokenizer_log(&self, samples: &[f32]) -> Option<Vec<f32>> {
        let mut mel = self.try_compute(samples)?;
        mel.truncate(mel.len().saturating_sub(self.n_mels));
        mel.iter_mut().for_each(|v| *v = v.max(1e-10).log10());
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        mel.iter_mut()
            .for_each(|v| *v = (v.max(max - 8.0) + 4.0) / 4.0);
        Some(mel)
    }

    fn build(
        sample_rate: u32,
        n_fft: usize,
        hop: usize,
        n_mels: usize,
        fmax: f64,
        framing: Framing,
        spectrum: Spectrum,
    ) -> Self {
        let window = (0..n_fft)
            .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f64 / n_fft as f64).cos())
            .collect();
        Self {
            n_fft,
            hop,
            window,
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(n_fft),
            filters: slaney_filters(f64::from(sample_rate), n_fft, n_mels, fmax),
            n_mels,
            framing,
            spectrum,
        }
    }

    /// Frames `samples` holds: `1 + len / hop` centred, or
    /// `1 + (len + 2·pad − n_fft) / hop` reflect-padded (`None` when shorter
    /// than one frame or than the reflection).
    pub fn frames(&self, len: usize) -> Option<usize> {
        match self.framing {
            Framing::CentredZeros => Some(1 + len / self.hop),
            Framing::Reflect(pad) if len > pad && len + 2 * pad >= self.n_fft => {
                Some(1 + (len + 2 * pad - self.n_fft) / self.hop)
            }
            Framing::Reflect(_) => None,
        }
    }

    /// S3Gen's log-mel of 24 kHz `samples`, row-major `[frames, 80]`:
    /// `ln(max(mel, 1e-5))`. `None` when the signal is shorter than its
    /// reflect padding (721 samples), which PyTorch refuses too.
    pub fn s3gen_log(&self, samples: &[f32]) -> Option<Vec<f32>> {
        let mut mel = self.try_compute(samples)?;
        mel.iter_mut().for_each(|v| *v = v.max(1e-5).ln());
        Some(mel)
    }

    /// Frames of `samples` (see [`MelSpectrogram::frames`]), row-major
    /// `[frames, n_mels]`; empty when there is not one frame.
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        self.try_compute(samples).unwrap_or_default()
    }

    /// Frames of `samples`, row-major `[frames, bands]`; `None` when there
    /// is not one frame, or the signal is shorter than its reflect padding
    /// (which PyTorch refuses too).
    pub fn try_compute(&self, samples: &[f32]) -> Option<Vec<f32>> {
        let (n_fft, bins) = (self.n_fft, self.n_fft / 2 + 1);
        let frames = self.frames(samples.len())?;
        let len = samples.len() as isize;
        let (pad, reflect) = match self.framing {
            Framing::CentredZeros => (n_fft / 2, false),
            Framing::Reflect(pad) => (pad, true),
        };
        let mut out = Vec::with_capacity(frames * self.n_mels);
        let mut frame = vec![0f64; n_fft];
        let mut spectrum = vec![Complex::new(0f64, 0f64); bins];
        let mut scratch = vec![Complex::new(0f64, 0f64); self.fft.get_scratch_len()];
        let mut power = vec![0f64; bins];
        for t in 0..frames {
            // Frame t covers samples t·hop − pad .. t·hop − pad + N: zeros
            // outside (centred) or the signal mirrored at its ends (reflect).
            for (n, v) in frame.iter_mut().enumerate() {
                let mut i = (t * self.hop + n) as isize - pad as isize;
                if reflect {
                    i = if i < 0 {
                        -i
                    } else if i >= len {
                        2 * (len - 1) - i
                    } else {
                        i
                    };
                }
                let x = usize::try_from(i)
                    .ok()
                    .and_then(|i| samples.get(i))
                    .map_or(0.0, |&x| f64::from(x));
                *v = x * self.window[n];
            }
            // The buffers have the plan's lengths, so the transform cannot fail.
            if self
                .fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .is_err()
            {
                spectrum.fill(Complex::new(f64::NAN, f64::NAN));
            }
            for (p, z) in power.iter_mut().zip(&spectrum) {
                *p = match self.spectrum {
                    Spectrum::Power => z.norm_sqr(),
                    Spectrum::Magnitude { eps } => (z.norm_sqr() + eps).sqrt(),
                };
            }
            if self.filters.is_empty() {
                out.extend(power.iter().map(|&p| p as f32));
                continue;
            }
            for m in 0..self.n_mels {
                let f = &self.filters[m * bins..(m + 1) * bins];
                out.push(f.iter().zip(&power).map(|(w, p)| w * p).sum::<f64>() as f32);
            }
        }
        Some(out)
    }
}

/// Hz → mel on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let log_step = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_HZ / F_SP + (hz / MIN_LOG_HZ).ln() / log_step
    } else {
        hz / F_SP
    }
}

/// Mel → Hz on the Slaney scale.
fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (log_step * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// `librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax, htk=False,
/// norm="slaney")`, row-major `[n_mels, n_fft/2 + 1]`.
fn slaney_filters(sample_rate: f64, n_fft: usize, n_mels: usize, fmax: f64) -> Vec<f64> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|k| k as f64 * sample_rate / n_fft as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0.0; n_mels * bins];
    for m in 0..n_mels {
        let (left, centre, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            weights[m * bins + k] = lower.min(upper).max(0.0) * enorm;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{read_f32, relative_l2};

    fn fixture(name: &str) -> Vec<f32> {
        read_f32("s3gen_mel", name)
    }

    /// A pure tone lands in the band whose centre is nearest its frequency.
    #[test]
    fn a_tone_peaks_in_its_band() {
        let mel = MelSpectrogram::new(16000, 400, 160, 40);
        let tone: Vec<f32> = (0..16000)
            .map(|n| (2.0 * PI * 1000.0 * n as f64 / 16000.0).sin() as f32)
            .collect();
        let frames = mel.compute(&tone);
        assert_eq!(frames.len(), (1 + 16000 / 160) * 40);
        let middle = &frames[50 * 40..51 * 40];
        let peak = middle
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .expect("bands");
        let centre = |m: usize| {
            let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
            mel_to_hz(lo + (hi - lo) * (m + 1) as f64 / 41.0)
        };
        assert!(
            (centre(peak) - 1000.0).abs() < 120.0,
            "band {peak} at {} Hz",
            centre(peak)
        );
    }

    #[test]
    fn slaney_scale_round_trips() {
        for hz in [0.0, 500.0, 1000.0, 3000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    /// The S3 tokenizer's log-mel against `chatterbox-tts` 0.1.7's
    /// `S3Tokenizer.log_mel_spectrogram` (`tools/make_s3gen_goldens.py`).
    #[test]
    fn s3_tokenizer_mel_matches_the_reference() {
        let input = fixture("tokenizer_input.f32");
        let want = fixture("tokenizer_mel.f32");
        let got = MelSpectrogram::s3_tokenizer()
            .s3_tokenizer_log(&input)
            .expect("long enough");
        assert_eq!(got.len(), want.len(), "frames");
        assert_eq!(got.len(), input.len() / 160 * S3_TOKENIZER_MELS);
        let rel = relative_l2(&got, &want);
        eprintln!("S3 tokenizer mel: relative L2 {rel:.2e}");
        assert!(rel < 1e-5, "relative L2 {rel:.2e}");
        assert_eq!(
            MelSpectrogram::s3_tokenizer().s3_tokenizer_log(&input[..150]),
            None
        );
    }

    /// S3Gen's log-mel against `chatterbox-tts` 0.1.7's `mel_spectrogram`
    /// (`tools/make_s3gen_goldens.py`): same frame count, within 1e-5
    /// relative L2 (the reference's STFT runs in f32, ours in f64).
    #[test]
    fn s3gen_mel_matches_the_reference() {
        let input = fixture("input.f32");
        let want = fixture("mel.f32");
        let mel = MelSpectrogram::s3gen();
        let got = mel.s3gen_log(&input).expect("long enough");
        assert_eq!(got.len(), want.len(), "frames");
        assert_eq!(mel.frames(input.len()), Some(want.len() / S3GEN_MELS));
        let rel = relative_l2(&got, &want);
        eprintln!("S3Gen mel: relative L2 {rel:.2e}");
        assert!(rel < 1e-5, "relative L2 {rel:.2e}");
        // Shorter than the reflection: no frames, as PyTorch refuses it.
        assert_eq!(mel.s3gen_log(&input[..700]), None);
        assert_eq!(mel.frames(700), None);
    }
}

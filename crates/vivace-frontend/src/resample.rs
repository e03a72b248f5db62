//! Sample-rate conversion for reference recordings: the voice encoder works
//! at 16 kHz, recordings come at any rate.
//!
//! resemblyzer calls `librosa.resample` (soxr, "HQ"), which returns
//! `ceil(n · to / from)` samples with the filter's delay removed. Vivace uses
//! `rubato`'s synchronous FFT resampler over the whole clip, which gives the
//! same length and alignment; the two filters differ slightly near the new
//! Nyquist frequency, which the encoder's 40 mel bands (up to 8 kHz) barely
//! see (the end-to-end embedding test bounds the effect).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::{Error, Result};

/// The shortest FFT block on the input side. Longer blocks make a sharper
/// filter; on the committed 22050 Hz recording, 882 frames came closest to
/// librosa's output (relative L2 difference 3.5e-3, against 4.8e-3 at 17640).
const MIN_BLOCK_FRAMES: usize = 512;

/// Input frames per FFT block: the fewest *even* number of the rates'
/// smallest whole-ratio blocks reaching [`MIN_BLOCK_FRAMES`]. Both FFT sizes
/// must be even: rubato reports its delay as half the output block, and with
/// an odd block the true delay is a fraction of a sample off (0.36 samples,
/// measured at 22050 → 16000), shifting the whole clip.
fn block_frames(from: u32, to: u32) -> usize {
    let base_in = from as usize / gcd(from as usize, to as usize);
    let count = MIN_BLOCK_FRAMES.div_ceil(base_in).max(1);
    (count + count % 2) * base_in
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resamples mono `samples` from `from` Hz to `to` Hz. Returns the input
/// unchanged when the rates are equal (as librosa does).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let failed = |reason: String| Error::Resample { from, to, reason };
    if from == 0 || to == 0 {
        return Err(failed("a sample rate of 0 Hz".into()));
    }
    let mut resampler = Fft::<f32>::new_custom(
        from as usize,
        to as usize,
        block_frames(from, to),
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Both,
    )
    .map_err(|e| failed(e.to_string()))?;
    let input =
        InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| failed(e.to_string()))?;
    let output = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| failed(e.to_string()))?;
    Ok(output.take_data())
}

/// Resamples mono `samples` from `from` Hz to `to` Hz exactly as
/// torchaudio's `Resample` with its defaults does (`sinc_interp_hann`,
/// 6 zero crossings, roll-off 0.99, the kernel computed in f64 and applied
/// in f32): a polyphase windowed-sinc filter, `ceil(n · to / from)` samples.
/// Chatterbox's `embed_ref` makes its 16 kHz copy this way, so the S3
/// tokens of a 24 kHz reference match the reference's.
pub fn torchaudio_resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    if from == 0 || to == 0 {
        return Err(Error::Resample {
            from,
            to,
            reason: "a sample rate of 0 Hz".into(),
        });
    }
    const ZEROS: f64 = 6.0;
    const ROLLOFF: f64 = 0.99;
    let g = gcd(from as usize, to as usize);
    let (orig, new) = (from as usize / g, to as usize / g);
    let base = orig.min(new) as f64 * ROLLOFF;
    let width = (ZEROS * orig as f64 / base).ceil() as usize;
    let taps = 2 * width + orig;
    // kernel[j][k]: output phase j, input offset k − width.
    let kernel: Vec<f32> = (0..new)
        .flat_map(|j| {
            (0..taps).map(move |k| {
                let idx = (k as f64 - width as f64) / orig as f64;
                let t = ((-(j as f64) / new as f64 + idx) * base).clamp(-ZEROS, ZEROS);
                let window = (t * std::f64::consts::PI / ZEROS / 2.0).cos().powi(2);
                let t = t * std::f64::consts::PI;
                let sinc = if t == 0.0 { 1.0 } else { t.sin() / t };
                (sinc * window * base / orig as f64) as f32
            })
        })
        .collect();
    let n = samples.len();
    let out_len = (new as u128 * n as u128).div_ceil(orig as u128) as usize;
    let mut out = Vec::with_capacity(out_len);
    // The input padded with `width` zeros before and `width + orig` after.
    let at = |i: usize| -> f32 {
        i.checked_sub(width)
            .and_then(|i| samples.get(i))
            .copied()
            .unwrap_or(0.0)
    };
    'frames: for frame in 0.. {
        for j in 0..new {
            if out.len() == out_len {
                break 'frames;
            }
            let k = &kernel[j * taps..(j + 1) * taps];
            let start = frame * orig;
            let acc: f32 = k.iter().enumerate().map(|(m, w)| w * at(start + m)).sum();
            out.push(acc);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// A 440 Hz tone at 22050 Hz becomes the same tone at 16 kHz, with
    /// librosa's length `ceil(n · 16000 / 22050)` and no delay.
    #[test]
    fn a_tone_keeps_its_frequency_phase_and_length() {
        let n = 22050;
        let out = resample(&sine(440.0, 22050, n), 22050, 16000).expect("resample");
        assert_eq!(out.len(), (n as f64 * 16000.0 / 22050.0).ceil() as usize);
        let expected = sine(440.0, 16000, out.len());
        // Away from the clip's edges, where the filter sees the cut.
        let worst = out[400..out.len() - 400]
            .iter()
            .zip(&expected[400..])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "worst sample error {worst}");
    }

    /// Content above the new Nyquist frequency is filtered out, not folded
    /// back into the band.
    #[test]
    fn content_above_the_new_nyquist_is_removed() {
        let out = resample(&sine(10_000.0, 44100, 44100), 44100, 16000).expect("resample");
        let rms = (out[400..out.len() - 400].iter().map(|s| s * s).sum::<f32>()
            / (out.len() - 800) as f32)
            .sqrt();
        assert!(rms < 1e-3, "aliased rms {rms}");
    }

    /// Every common rate to 16 kHz keeps the tone in place: the block sizes
    /// are even, so the reported delay is exact.
    #[test]
    fn common_rates_are_aligned() {
        for rate in [8000, 11025, 22050, 24000, 32000, 44100, 48000] {
            let out = resample(&sine(300.0, rate, rate as usize), rate, 16000).expect("resample");
            let expected = sine(300.0, 16000, out.len());
            let worst = out[800..out.len() - 800]
                .iter()
                .zip(&expected[800..])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-3, "{rate} Hz: worst sample error {worst}");
        }
    }

    #[test]
    fn a_rate_of_zero_is_an_error() {
        assert!(resample(&[0.1, 0.2], 0, 16000).is_err());
    }

    #[test]
    fn equal_rates_are_a_copy() {
        let x = sine(100.0, 16000, 100);
        assert_eq!(resample(&x, 16000, 16000).expect("copy"), x);
    }
}

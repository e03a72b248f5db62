//! Silero VAD (16 kHz; MIT), the voice-activity detector OpenVoice splits a
//! reference recording with, and its `get_speech_timestamps`. The weights
//! are read from the `silero-vad` package's `silero_vad_16k_op15.onnx`
//! (tensor names unchanged), whose initializers are exactly the weights of
//! the package's default TorchScript model; the package's
//! `silero_vad_16k.safetensors` holds other weights (0.19 apart in
//! probability on the test recording), so it is not used.
//!
//! Per 512-sample window (32 ms) with the previous window's last 64 samples
//! in front: the window reflect-padded by 64 on the right, a 256-point STFT
//! as a strided convolution (`stft_conv`, 4 frames), magnitudes, four
//! convolutions with ReLU down to one 128-value frame, an LSTM cell whose
//! state runs across windows, and a sigmoid of a 1×1 convolution. About
//! 0.7 million multiply-adds a window (22 MFLOP per second of audio), run
//! here in plain loops.

use std::ops::Range;
use std::path::Path;

use candle_core::{DType, Device};

use crate::onnx::OnnxWeights;
use crate::Result;

/// Samples per window at 16 kHz.
pub const WINDOW: usize = 512;
/// Samples of the previous window prepended to each.
const CONTEXT: usize = 64;
/// The model's rate.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT size and hop of the STFT convolution.
const N_FFT: usize = 256;
const HOP: usize = 128;
/// Frequency bins of the STFT.
const BINS: usize = N_FFT / 2 + 1;
/// The LSTM's width.
const HIDDEN: usize = 128;

/// A 1-D convolution with padding 1 and kernel 3, weights `[out, in, 3]`.
#[derive(Debug, Clone)]
struct Conv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
    stride: usize,
}

impl Conv {
    /// `x` `[inputs, len]` to `[outputs, (len − 1) / stride + 1]`, ReLU applied.
    fn forward_relu(&self, x: &[f32], len: usize) -> (Vec<f32>, usize) {
        let out_len = (len + 2 - 3) / self.stride + 1;
        let mut out = vec![0f32; self.outputs * out_len];
        for o in 0..self.outputs {
            for t in 0..out_len {
                let mut sum = self.bias[o];
                for i in 0..self.inputs {
                    let w = &self.weight[(o * self.inputs + i) * 3..][..3];
                    let row = &x[i * len..(i + 1) * len];
                    for (k, &wk) in w.iter().enumerate() {
                        // Input position t·stride + k − 1 (padding 1).
                        if let Some(&v) = (t * self.stride + k)
                            .checked_sub(1)
                            .and_then(|p| row.get(p))
                        {
                            sum += wk * v;
                        }
                    }
                }
                out[o * out_len + t] = sum.max(0.0);
            }
        }
        (out, out_len)
    }
}

/// The loaded detector.
#[derive(Debug, Clone)]
pub struct SileroVad {
    /// `[258, 256]`: the real parts' filters, then the imaginary parts'.
    stft: Vec<f32>,
    convs: [Conv; 4],
    /// `[512, 128]` each; gates in PyTorch's order i, f, g, o.
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    /// `b_ih + b_hh`.
    bias: Vec<f32>,
    final_w: Vec<f32>,
    final_b: f32,
}

/// The options of `get_speech_timestamps` that OpenVoice's split sets or
/// inherits (no maximum speech length).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechOptions {
    /// Probability at or above which a window is speech.
    pub threshold: f32,
    /// Speech runs this short or shorter are dropped.
    pub min_speech_ms: u32,
    /// Silence must last this long to end a run.
    pub min_silence_ms: u32,
    /// Each run is padded by this much on both sides.
    pub speech_pad_ms: u32,
}

impl Default for SpeechOptions {
    /// The package's defaults.
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
        }
    }
}

impl SileroVad {
    /// Reads `silero_vad_16k_op15.onnx`.
    pub fn load(path: &Path) -> Result<Self> {
        let weights = OnnxWeights::read(path, &Device::Cpu, DType::F32)?;
        let what = "Silero VAD's silero_vad_16k_op15.onnx";
        let get = |name: &str, dims: &[usize]| weights.values(&format!("model.{name}"), dims, what);
        let conv = |i: usize, inputs: usize, outputs: usize, stride: usize| -> Result<Conv> {
            Ok(Conv {
                weight: get(
                    &format!("encoder.{i}.reparam_conv.weight"),
                    &[outputs, inputs, 3],
                )?,
                bias: get(&format!("encoder.{i}.reparam_conv.bias"), &[outputs])?,
                inputs,
                outputs,
                stride,
            })
        };
        let b_ih = get("decoder.rnn.bias_ih", &[4 * HIDDEN])?;
        let b_hh = get("decoder.rnn.bias_hh", &[4 * HIDDEN])?;
        Ok(Self {
            stft: get("stft.forward_basis_buffer", &[2 * BINS, 1, N_FFT])?,
            convs: [
                conv(0, BINS, 128, 1)?,
                conv(1, 128, 64, 2)?,
                conv(2, 64, 64, 2)?,
                conv(3, 64, HIDDEN, 1)?,
            ],
            w_ih: get("decoder.rnn.weight_ih", &[4 * HIDDEN, HIDDEN])?,
            w_hh: get("decoder.rnn.weight_hh", &[4 * HIDDEN, HIDDEN])?,
            bias: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            final_w: get("decoder.decoder.2.weight", &[1, HIDDEN, 1])?,
            final_b: get("decoder.decoder.2.bias", &[1])?[0],
        })
    }

    /// The speech probability of each 512-sample window of 16 kHz `audio`
    /// (the last one zero-padded), the state carried from window to window
    /// as `get_speech_timestamps` runs the model.
    pub fn probabilities(&self, audio: &[f32]) -> Vec<f32> {
        let (mut h, mut c) = (vec![0f32; HIDDEN], vec![0f32; HIDDEN]);
        let mut input = vec![0f32; CONTEXT + WINDOW + CONTEXT];
        let mut probs = Vec::with_capacity(audio.len().div_ceil(WINDOW));
        for start in (0..audio.len()).step_by(WINDOW) {
            // The previous window's last 64 samples, then this window.
            input.copy_within(WINDOW..WINDOW + CONTEXT, 0);
            let chunk = &audio[start..(start + WINDOW).min(audio.len())];
            input[CONTEXT..CONTEXT + chunk.len()].copy_from_slice(chunk);
            input[CONTEXT + chunk.len()..CONTEXT + WINDOW].fill(0.0);
            probs.push(self.window(&mut input, &mut h, &mut c));
        }
        probs
    }

    /// One window: `input` holds context and window in its first 576
    /// samples; its last 64 are the reflection, written here.
    fn window(&self, input: &mut [f32], h: &mut [f32], c: &mut [f32]) -> f32 {
        let n = CONTEXT + WINDOW;
        for i in 0..CONTEXT {
            input[n + i] = input[n - 2 - i];
        }
        let frames = (input.len() - N_FFT) / HOP + 1;
        let mut magnitude = vec![0f32; BINS * frames];
        for t in 0..frames {
            let x = &input[t * HOP..t * HOP + N_FFT];
            for k in 0..BINS {
                let dot = |f: &[f32]| f.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
                let re = dot(&self.stft[k * N_FFT..(k + 1) * N_FFT]);
                let im = dot(&self.stft[(BINS + k) * N_FFT..(BINS + k + 1) * N_FFT]);
                magnitude[k * frames + t] = (re * re + im * im).sqrt();
            }
        }
        let (mut x, mut len) = (magnitude, frames);
        for conv in &self.convs {
            (x, len) = conv.forward_relu(&x, len);
        }
        // One frame of 128 features left.
        let mut gates = self.bias.clone();
        for (g, row) in gates.iter_mut().enumerate() {
            let wi = &self.w_ih[g * HIDDEN..(g + 1) * HIDDEN];
            let wh = &self.w_hh[g * HIDDEN..(g + 1) * HIDDEN];
            *row += wi.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>()
                + wh.iter().zip(h.iter()).map(|(a, b)| a * b).sum::<f32>();
        }
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        for j in 0..HIDDEN {
            let i = sigmoid(gates[j]);
            let f = sigmoid(gates[HIDDEN + j]);
            let g = gates[2 * HIDDEN + j].tanh();
            let o = sigmoid(gates[3 * HIDDEN + j]);
            c[j] = f * c[j] + i * g;
            h[j] = o * c[j].tanh();
        }
        let logit = self.final_b
            + self
                .final_w
                .iter()
                .zip(h.iter())
                .map(|(w, v)| w * v.max(0.0))
                .sum::<f32>();
        let _ = len;
        sigmoid(logit)
    }
}

/// Speech runs, in samples of a 16 kHz signal of `len` samples, from the
/// window probabilities `probs`: `get_speech_timestamps_from_probs` with no
/// maximum speech length (hysteresis between `threshold` and `threshold −
/// 0.15`, short runs dropped, short silences bridged, runs padded).
pub fn speech_timestamps(probs: &[f32], len: usize, options: &SpeechOptions) -> Vec<Range<usize>> {
    let rate = f64::from(SAMPLE_RATE);
    let min_speech = rate * f64::from(options.min_speech_ms) / 1000.0;
    let pad = rate * f64::from(options.speech_pad_ms) / 1000.0;
    let min_silence = rate * f64::from(options.min_silence_ms) / 1000.0;
    let neg_threshold = (options.threshold - 0.15).max(0.01);
    let mut speeches: Vec<(f64, f64)> = Vec::new();
    let mut start: Option<usize> = None;
    let mut temp_end = 0usize;
    for (i, &p) in probs.iter().enumerate() {
        let sample = WINDOW * i;
        if p >= options.threshold && temp_end != 0 {
            temp_end = 0;
        }
        if p >= options.threshold && start.is_none() {
            start = Some(sample);
            continue;
        }
        if let (true, Some(s)) = (p < neg_threshold, start) {
            if temp_end == 0 {
                temp_end = sample;
            }
            if ((sample - temp_end) as f64) < min_silence {
                continue;
            }
            if (temp_end - s) as f64 > min_speech {
                speeches.push((s as f64, temp_end as f64));
            }
            start = None;
            temp_end = 0;
        }
    }
    if let Some(s) = start {
        if (len.saturating_sub(s)) as f64 > min_speech {
            speeches.push((s as f64, len as f64));
        }
    }
    let n = speeches.len();
    for i in 0..n {
        if i == 0 {
            speeches[0].0 = (speeches[0].0 - pad).max(0.0).trunc();
        }
        if i + 1 < n {
            let silence = speeches[i + 1].0 - speeches[i].1;
            if silence < 2.0 * pad {
                let half = (silence / 2.0).floor();
                speeches[i].1 = (speeches[i].1 + half).trunc();
                speeches[i + 1].0 = (speeches[i + 1].0 - half).max(0.0).trunc();
            } else {
                speeches[i].1 = (speeches[i].1 + pad).min(len as f64).trunc();
                speeches[i + 1].0 = (speeches[i + 1].0 - pad).max(0.0).trunc();
            }
        } else {
            speeches[i].1 = (speeches[i].1 + pad).min(len as f64).trunc();
        }
    }
    speeches
        .into_iter()
        .map(|(s, e)| s as usize..e as usize)
        .collect()
}

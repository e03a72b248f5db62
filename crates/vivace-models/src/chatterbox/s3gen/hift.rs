//! S3Gen's vocoder, HiFT (HiFTNet: a neural source filter and iSTFTNet):
//! 80-bin mels at 50 frames/s to 24 kHz audio.
//!
//! - `ConvRNNF0Predictor` estimates F0 per mel frame;
//! - the harmonic source (`SourceModuleHnNSF`) turns the F0, upsampled to
//!   the sample rate, into a sine excitation with 8 overtones;
//! - the generator upsamples the mel ×8, ×5, ×3 through transposed
//!   convolutions and Snake-activated residual blocks, adding the source's
//!   STFT (downsampled to each stage) at each stage;
//! - its output is a 16-point magnitude and phase spectrum per 4 samples,
//!   turned into audio by an inverse STFT, then clamped to ±0.99.

use std::f64::consts::PI;

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

use super::conv::PaddedConv;
use super::S3GenConfig;
use crate::nn::cpu_ops::snake;
use crate::nn::layers::TrimmedConvTranspose1d;

/// Output sample rate.
pub const SAMPLE_RATE: usize = 24_000;
/// Samples per mel frame (8 · 5 · 3 upsampling, then the iSTFT hop of 4).
pub const HOP: usize = 480;
const UPSAMPLE_RATES: [usize; 3] = [8, 5, 3];
const UPSAMPLE_KERNELS: [usize; 3] = [16, 11, 7];
const RESBLOCK_KERNELS: [usize; 3] = [3, 7, 11];
const SOURCE_RESBLOCK_KERNELS: [usize; 3] = [7, 7, 11];
const DILATIONS: [usize; 3] = [1, 3, 5];
/// The iSTFT's FFT size and hop.
const N_FFT: usize = 16;
const ISTFT_HOP: usize = 4;
/// Overtones above F0 in the sine source.
pub const HARMONICS: usize = 8;
/// The sine source's amplitude, voiced noise and voicing threshold (Hz).
const SINE_AMP: f32 = 0.1;
const NOISE_STD: f32 = 0.003;
const VOICED_THRESHOLD: f32 = 10.0;
/// Slope of the leaky ReLUs between stages, and of the last one.
const LRELU_SLOPE: f64 = 0.1;
const LAST_LRELU_SLOPE: f64 = 0.01;
/// The output is clamped to this amplitude.
const AUDIO_LIMIT: f64 = 0.99;

/// How the sine source draws its random parts: per-harmonic phases
/// (uniform in ±π, the fundamental's kept at 0) and additive noise.
pub trait SourceNoise {
    /// A phase for each of the overtones `1..=HARMONICS`.
    fn phases(&mut self) -> [f32; HARMONICS];
    /// Standard normal noise, one value per sample and harmonic.
    fn normal(&mut self, n: usize) -> Vec<f32>;
}

/// HiFT's residual block: pairs of (Snake, dilated conv, Snake, conv).
#[derive(Debug, Clone)]
struct ResBlock {
    convs1: Vec<PaddedConv>,
    convs2: Vec<PaddedConv>,
    alphas1: Vec<Tensor>,
    alphas2: Vec<Tensor>,
}

impl ResBlock {
    fn new(channels: usize, kernel: usize, vb: VarBuilder) -> Result<Self> {
        let mut block = Self {
            convs1: vec![],
            convs2: vec![],
            alphas1: vec![],
            alphas2: vec![],
        };
        for (i, &d) in DILATIONS.iter().enumerate() {
            block.convs1.push(PaddedConv::same(
                channels,
                channels,
                kernel,
                d,
                vb.pp(format!("convs1.{i}")),
            )?);
            block.convs2.push(PaddedConv::same(
                channels,
                channels,
                kernel,
                1,
                vb.pp(format!("convs2.{i}")),
            )?);
            block
                .alphas1
                .push(vb.get(channels, &format!("activations1.{i}.alpha"))?);
            block
                .alphas2
                .push(vb.get(channels, &format!("activations2.{i}.alpha"))?);
        }
        Ok(block)
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for i in 0..self.convs1.len() {
            let t = self.convs1[i].forward(&snake(&xs, &self.alphas1[i])?)?;
            xs = self.convs2[i].forward_act(&snake(&t, &self.alphas2[i])?, 1.0, Some(&xs))?;
        }
        Ok(xs)
    }
}

/// A strided convolution of the source spectrum down to a stage's rate.
#[derive(Debug, Clone)]
struct SourceDown {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
}

impl SourceDown {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = xs.conv1d(&self.weight, self.padding, self.stride, 1, 1)?;
        ys.broadcast_add(&self.bias.reshape((1, (), 1))?)
    }
}

/// `ConvRNNF0Predictor`: five convolutions with ELU, a linear head, `|·|`.
#[derive(Debug, Clone)]
struct F0Predictor {
    convs: Vec<PaddedConv>,
    classifier: Linear,
}

impl F0Predictor {
    fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let convs = (0..5)
            .map(|i| {
                let c_in = if i == 0 {
                    super::decoder::MEL_CHANNELS
                } else {
                    channels
                };
                PaddedConv::same(c_in, channels, 3, 1, vb.pp(format!("condnet.{}", 2 * i)))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            convs,
            classifier: linear(channels, 1, vb.pp("classifier"))?,
        })
    }

    /// F0 in Hz per frame, `[batch, frames]`, of mels `[batch, 80, frames]`.
    fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let mut xs = mel.clone();
        for conv in &self.convs {
            xs = conv.forward(&xs)?.elu(1.0)?;
        }
        self.classifier
            .forward(&xs.transpose(1, 2)?)?
            .squeeze(2)?
            .abs()
    }
}

/// The HiFT vocoder (`mel2wav.*`).
#[derive(Debug, Clone)]
pub struct Hift {
    f0: F0Predictor,
    source_linear: Linear,
    conv_pre: PaddedConv,
    ups: Vec<TrimmedConvTranspose1d>,
    source_downs: Vec<SourceDown>,
    source_resblocks: Vec<ResBlock>,
    resblocks: Vec<ResBlock>,
    conv_post: PaddedConv,
}

impl Hift {
    /// Loads `mel2wav.*`.
    pub fn new(cfg: &S3GenConfig, vb: VarBuilder) -> Result<Self> {
        let base = cfg.hift_base_channels;
        let mut ups = vec![];
        for (i, (&u, &k)) in UPSAMPLE_RATES.iter().zip(&UPSAMPLE_KERNELS).enumerate() {
            let (c_in, c_out) = (base >> i, base >> (i + 1));
            ups.push(TrimmedConvTranspose1d::new(
                c_in,
                c_out,
                k,
                u,
                (k - u) / 2,
                vb.pp(format!("ups.{i}")),
            )?);
        }
        // Stage i's source input is downsampled by the product of the later
        // upsampling rates: 15, 3, 1.
        let mut source_downs = vec![];
        let mut source_resblocks = vec![];
        for i in 0..UPSAMPLE_RATES.len() {
            let rate: usize = UPSAMPLE_RATES[i + 1..].iter().product();
            let c = base >> (i + 1);
            let kernel = if rate == 1 { 1 } else { 2 * rate };
            let vbi = vb.pp(format!("source_downs.{i}"));
            source_downs.push(SourceDown {
                weight: vbi.get((c, N_FFT + 2, kernel), "weight")?,
                bias: vbi.get(c, "bias")?,
                stride: rate,
                padding: if rate == 1 { 0 } else { rate / 2 },
            });
            source_resblocks.push(ResBlock::new(
                c,
                SOURCE_RESBLOCK_KERNELS[i],
                vb.pp(format!("source_resblocks.{i}")),
            )?);
        }
        let mut resblocks = vec![];
        for i in 0..UPSAMPLE_RATES.len() {
            for (j, &k) in RESBLOCK_KERNELS.iter().enumerate() {
                let idx = i * RESBLOCK_KERNELS.len() + j;
                resblocks.push(ResBlock::new(
                    base >> (i + 1),
                    k,
                    vb.pp(format!("resblocks.{idx}")),
                )?);
            }
        }
        let last = base >> UPSAMPLE_RATES.len();
        Ok(Self {
            f0: F0Predictor::new(cfg.f0_channels, vb.pp("f0_predictor"))?,
            source_linear: linear(HARMONICS + 1, 1, vb.pp("m_source.l_linear"))?,
            conv_pre: PaddedConv::same(
                super::decoder::MEL_CHANNELS,
                base,
                7,
                1,
                vb.pp("conv_pre"),
            )?,
            ups,
            source_downs,
            source_resblocks,
            resblocks,
            conv_post: PaddedConv::same(last, N_FFT + 2, 7, 1, vb.pp("conv_post"))?,
        })
    }

    /// F0 per frame, `[1, frames]`, of a mel `[1, 80, frames]`.
    pub fn f0(&self, mel: &Tensor) -> Result<Tensor> {
        self.f0.forward(mel)
    }

    /// The harmonic source for F0 `[1, frames]`: `[1, 1, frames · 480]`.
    /// With `noise` `None` the phases and noise are zero (parity runs).
    pub fn source(&self, f0: &Tensor, noise: Option<&mut dyn SourceNoise>) -> Result<Tensor> {
        let f0: Vec<f32> = f0.squeeze(0)?.to_dtype(DType::F32)?.to_vec1()?;
        let samples = f0.len() * HOP;
        let harmonics = sine_harmonics(&f0, noise)?;
        let device = self.source_linear.weight().device();
        let sines = Tensor::from_vec(harmonics, (1, samples, HARMONICS + 1), device)?
            .to_dtype(self.source_linear.weight().dtype())?;
        self.source_linear.forward(&sines)?.tanh()?.transpose(1, 2)
    }

    /// Audio `[1, frames · 480]` from a mel `[1, 80, frames]` and its
    /// source from [`Hift::source`].
    pub fn decode(&self, mel: &Tensor, source: &Tensor) -> Result<Tensor> {
        let dtype = mel.dtype();
        let spectrum = stft(source)?.to_dtype(dtype)?;
        let mut xs = self.conv_pre.forward(mel)?;
        let kernels = RESBLOCK_KERNELS.len();
        for (i, up) in self.ups.iter().enumerate() {
            xs = up.forward_act(&xs, LRELU_SLOPE)?;
            if i == self.ups.len() - 1 {
                // ReflectionPad1d((1, 0)): sample 1 copied in front.
                xs = Tensor::cat(&[&xs.narrow(D::Minus1, 1, 1)?, &xs], D::Minus1)?;
            }
            let si = self.source_resblocks[i].forward(&self.source_downs[i].forward(&spectrum)?)?;
            xs = (xs + si)?;
            let mut sum = self.resblocks[i * kernels].forward(&xs)?;
            for j in 1..kernels {
                sum = (sum + self.resblocks[i * kernels + j].forward(&xs)?)?;
            }
            xs = (sum / kernels as f64)?;
        }
        let xs = candle_nn::ops::leaky_relu(&xs, LAST_LRELU_SLOPE)?;
        let xs = self.conv_post.forward(&xs)?;
        let bins = N_FFT / 2 + 1;
        let magnitude = xs.narrow(1, 0, bins)?.exp()?;
        let phase = xs.narrow(1, bins, bins)?.sin()?;
        istft(&magnitude, &phase)?.clamp(-AUDIO_LIMIT, AUDIO_LIMIT)
    }

    /// F0, source and audio for a mel `[1, 80, frames]`.
    pub fn forward(&self, mel: &Tensor, noise: Option<&mut dyn SourceNoise>) -> Result<Tensor> {
        let f0 = self.f0(mel)?;
        let source = self.source(&f0, noise)?;
        self.decode(mel, &source)
    }
}

/// The sine source before its linear merge: `[samples, HARMONICS + 1]`,
/// row-major, for F0 per frame (each repeated over [`HOP`] samples).
///
/// The phase of harmonic `h` is `2π · frac(Σ f0·(h+1)/sr)`; the running sum
/// is accumulated in f64 and rounded to f32 per sample, as PyTorch's CPU
/// `cumsum` does, so long inputs keep the reference's phase.
fn sine_harmonics(f0: &[f32], mut noise: Option<&mut dyn SourceNoise>) -> Result<Vec<f32>> {
    let samples = f0.len() * HOP;
    let h = HARMONICS + 1;
    let mut phases = [0f32; HARMONICS + 1];
    if let Some(n) = noise.as_deref_mut() {
        phases[1..].copy_from_slice(&n.phases());
    }
    let normal = match noise {
        Some(n) => n.normal(samples * h),
        None => vec![0.0; samples * h],
    };
    if normal.len() != samples * h {
        candle_core::bail!(
            "the source noise gave {} values, {} expected",
            normal.len(),
            samples * h
        );
    }
    let two_pi = (2.0 * PI) as f32;
    let mut out = vec![0f32; samples * h];
    for (k, phase) in phases.iter().enumerate() {
        let mut acc = 0f64;
        for (n, row) in out.chunks_exact_mut(h).enumerate() {
            let f = f0[n / HOP];
            let step = f * (k as f32 + 1.0) / SAMPLE_RATE as f32;
            acc += step as f64;
            let cum = acc as f32;
            let theta = two_pi * (cum - cum.floor());
            let sine = SINE_AMP * (theta + phase).sin();
            let voiced = f > VOICED_THRESHOLD;
            let amp = if voiced { NOISE_STD } else { SINE_AMP / 3.0 };
            let value = if voiced { sine } else { 0.0 };
            row[k] = value + amp * normal[n * h + k];
        }
    }
    Ok(out)
}

/// The periodic Hann window of [`N_FFT`] points.
fn hann() -> [f64; N_FFT] {
    let mut w = [0f64; N_FFT];
    for (n, v) in w.iter_mut().enumerate() {
        *v = 0.5 - 0.5 * (2.0 * PI * n as f64 / N_FFT as f64).cos();
    }
    w
}

/// `(cos, sin)` of `2π·m/N` for `m < N`: the twiddles of the 16-point
/// transforms (`k·n mod N` indexes them), computed once per call instead
/// of per frame, bin and sample.
fn twiddles() -> ([f64; N_FFT], [f64; N_FFT]) {
    let mut cos = [0f64; N_FFT];
    let mut sin = [0f64; N_FFT];
    for m in 0..N_FFT {
        let angle = 2.0 * PI * m as f64 / N_FFT as f64;
        cos[m] = angle.cos();
        sin[m] = angle.sin();
    }
    (cos, sin)
}

/// `torch.stft(x, 16, 4, window=hann, center=True)` (reflect padding),
/// real parts then imaginary parts: `[1, 18, samples / 4 + 1]`.
fn stft(source: &Tensor) -> Result<Tensor> {
    let x: Vec<f32> = source.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
    let len = x.len();
    let pad = N_FFT / 2;
    if len <= pad {
        candle_core::bail!("the source has {len} samples, too few for the vocoder's STFT");
    }
    let reflect = |i: isize| -> f64 {
        let j = if i < 0 {
            -i
        } else if i >= len as isize {
            2 * (len as isize - 1) - i
        } else {
            i
        };
        x[j as usize] as f64
    };
    let frames = len / ISTFT_HOP + 1;
    let bins = N_FFT / 2 + 1;
    let window = hann();
    let (cos, sin) = twiddles();
    let mut out = vec![0f32; 2 * bins * frames];
    let mut frame = [0f64; N_FFT];
    for t in 0..frames {
        for (n, v) in frame.iter_mut().enumerate() {
            *v = window[n] * reflect((t * ISTFT_HOP + n) as isize - pad as isize);
        }
        for k in 0..bins {
            let (mut re, mut im) = (0f64, 0f64);
            for (n, v) in frame.iter().enumerate() {
                re += v * cos[k * n % N_FFT];
                im -= v * sin[k * n % N_FFT];
            }
            out[k * frames + t] = re as f32;
            out[(bins + k) * frames + t] = im as f32;
        }
    }
    Tensor::from_vec(out, (1, 2 * bins, frames), source.device())
}

/// `torch.istft` of `magnitude · e^{i·phase}` (`[1, 9, frames]` each, the
/// magnitude clipped at 100) with the Hann window, hop 4, `center=True`:
/// `[1, 4 · (frames − 1)]` samples.
fn istft(magnitude: &Tensor, phase: &Tensor) -> Result<Tensor> {
    let device = magnitude.device().clone();
    let dtype = magnitude.dtype();
    let (_, bins, frames) = magnitude.dims3()?;
    let mag: Vec<f32> = magnitude
        .clamp(f64::NEG_INFINITY, 100.0)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let ph: Vec<f32> = phase.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let window = hann();
    let (cos, sin) = twiddles();
    let total = N_FFT + ISTFT_HOP * (frames - 1);
    let mut signal = vec![0f64; total];
    let mut envelope = vec![0f64; total];
    let mut frame = [0f64; N_FFT];
    for t in 0..frames {
        frame.fill(0.0);
        for k in 0..bins {
            let m = mag[k * frames + t] as f64;
            let p = ph[k * frames + t];
            let re = m * (p.cos() as f64);
            let im = m * (p.sin() as f64);
            // DC and Nyquist count once and their imaginary parts drop out
            // (as in pocketfft's c2r); the others twice.
            let weight = if k == 0 || k == N_FFT / 2 { 1.0 } else { 2.0 };
            for (n, v) in frame.iter_mut().enumerate() {
                let m = k * n % N_FFT;
                let term = if k == 0 || k == N_FFT / 2 {
                    re * cos[m]
                } else {
                    re * cos[m] - im * sin[m]
                };
                *v += weight * term;
            }
        }
        for n in 0..N_FFT {
            let i = t * ISTFT_HOP + n;
            signal[i] += frame[n] / N_FFT as f64 * window[n];
            envelope[i] += window[n] * window[n];
        }
    }
    let start = N_FFT / 2;
    let len = ISTFT_HOP * (frames - 1);
    let out: Vec<f32> = (start..start + len)
        .map(|i| {
            let e = envelope[i];
            (if e > 1e-11 { signal[i] / e } else { signal[i] }) as f32
        })
        .collect();
    Tensor::from_vec(out, (1, len), &device)?.to_dtype(dtype)
}

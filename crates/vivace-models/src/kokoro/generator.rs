//! Kokoro's generator (`decoder.decoder.generator`, iSTFTNet): a harmonic
//! source from F0 (nine sines, no noise in the export), its 20-point STFT
//! as magnitude and phase, two upsampling stages (transposed convolution,
//! the source added through a strided convolution and an AdaIN Snake
//! residual block, three AdaIN Snake residual blocks averaged), `conv_post`
//! to 11 log-magnitudes and 11 phases, and the inverse STFT the export
//! computes by a transposed convolution. Integer layers in the export's
//! int8 arithmetic, the rest in f32 as the graph has it.

use crate::error::Result;
use crate::nn::int8::{QuantizedConv1d, QuantizedLinear};
use crate::onnx::OnnxGraph;

use super::dft::OrtDft;
use super::prosody::AdaIn;

/// The generator's node path in the export.
const GEN: &str = "/decoder/decoder/generator";
/// Its weights' prefix.
const GEN_WEIGHTS: &str = "decoder.decoder.generator";
/// Samples per F0 frame (upsample rates 10 × 6 × the STFT hop 5).
const UPSAMPLE: usize = 300;
/// Output sample rate.
const SAMPLE_RATE: f32 = 24_000.0;
/// STFT size and hop.
const N_FFT: usize = 20;
const HOP: usize = 5;

fn leaky(x: &mut [f32], slope: f32) {
    for v in x.iter_mut() {
        if *v < 0.0 {
            *v *= slope;
        }
    }
}

/// ONNX `Resize`, linear, `half_pixel`, along one axis as onnxruntime
/// computes it (source coordinate in f32, clamped; the two neighbours
/// weighted by their distances, halves where they coincide).
fn resize_linear(x: &[f32], scale: f32) -> Vec<f32> {
    let n = x.len();
    let out = (scale * n as f32) as usize;
    (0..out)
        .map(|i| {
            let pos = ((i as f32 + 0.5) / scale - 0.5).clamp(0.0, (n.max(1) - 1) as f32);
            let i1 = (pos as usize).min(n - 1);
            let i2 = (i1 + 1).min(n - 1);
            let (d1, d2) = if i1 == i2 {
                (0.5, 0.5)
            } else {
                ((pos - i1 as f32).abs(), (pos - i2 as f32).abs())
            };
            d2 * x[i1] + d1 * x[i2]
        })
        .collect()
}

/// A float convolution or transposed convolution read from its node.
struct FloatConv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    dims: [usize; 3],
    stride: usize,
    pads: (usize, usize),
}

impl FloatConv {
    fn load(graph: &OnnxGraph, node: &str, op: &str) -> Result<Self> {
        let found = graph.node(node, op)?;
        let input = |slot: usize| found.inputs.get(slot).cloned().unwrap_or_default();
        let (dims, weight) = graph.values(&input(1))?;
        let (_, bias) = graph.values(&input(2))?;
        let [a, b, k] = dims[..] else {
            return Err(graph.corrupt(format!("`{node}`: weight {dims:?}")));
        };
        let ints = |name: &str| {
            found
                .attribute(name)
                .map(|a| a.ints.clone())
                .unwrap_or_default()
        };
        let first = |v: Vec<i64>, default: usize| {
            v.first()
                .map_or(default, |&s| usize::try_from(s).unwrap_or(default))
        };
        let pads = ints("pads");
        let group = first(ints("group"), 1);
        if group != 1 {
            return Err(graph.corrupt(format!("`{node}`: group {group}")));
        }
        Ok(Self {
            weight,
            bias,
            dims: [a, b, k],
            stride: first(ints("strides"), 1),
            pads: (
                pads.first().map_or(0, |&p| usize::try_from(p).unwrap_or(0)),
                pads.get(1).map_or(0, |&p| usize::try_from(p).unwrap_or(0)),
            ),
        })
    }

    /// `Conv` (weight `[out, in, k]`), stride 1.
    fn conv(&self, x: &[f32]) -> Vec<f32> {
        let [c_out, c_in, k] = self.dims;
        let t = x.len() / c_in.max(1);
        let padded_t = t + self.pads.0 + self.pads.1;
        let mut padded = vec![0f32; c_in * padded_t];
        for c in 0..c_in {
            padded[c * padded_t + self.pads.0..c * padded_t + self.pads.0 + t]
                .copy_from_slice(&x[c * t..(c + 1) * t]);
        }
        let t_out = (padded_t + 1).saturating_sub(k);
        let mut out = vec![0f32; c_out * t_out];
        crate::nn::cpu_ops::with_wide_vectors(|| {
            for co in 0..c_out {
                let o = &mut out[co * t_out..(co + 1) * t_out];
                o.iter_mut().for_each(|v| *v = self.bias[co]);
                for ci in 0..c_in {
                    let row = &padded[ci * padded_t..(ci + 1) * padded_t];
                    for kk in 0..k {
                        let w = self.weight[(co * c_in + ci) * k + kk];
                        for (v, &xv) in o.iter_mut().zip(&row[kk..kk + t_out]) {
                            *v += w * xv;
                        }
                    }
                }
            }
        });
        out
    }

    /// `ConvTranspose` (weight `[in, out, k]`), by phase: the taps
    /// `kk = r + m·stride` of output phase `r` add `w·x[q − m]` into
    /// `full[q·stride + r]`, so each inner loop runs over contiguous steps.
    fn transposed(&self, x: &[f32]) -> Vec<f32> {
        let [c_in, c_out, k] = self.dims;
        let t = x.len() / c_in.max(1);
        let stride = self.stride.max(1);
        let full_len = (t.max(1) - 1) * stride + k;
        let t_out = full_len.saturating_sub(self.pads.0 + self.pads.1);
        let phase_len = t + k.div_ceil(stride);
        let mut out = vec![0f32; c_out * t_out];
        let mut phases = vec![0f32; stride * phase_len];
        crate::nn::cpu_ops::with_wide_vectors(|| {
            for co in 0..c_out {
                phases.iter_mut().for_each(|v| *v = 0.0);
                for ci in 0..c_in {
                    let xs = &x[ci * t..(ci + 1) * t];
                    let w = &self.weight[(ci * c_out + co) * k..(ci * c_out + co + 1) * k];
                    for (kk, &wk) in w.iter().enumerate() {
                        let (r, m) = (kk % stride, kk / stride);
                        let dst = &mut phases[r * phase_len + m..r * phase_len + m + t];
                        for (d, &xv) in dst.iter_mut().zip(xs) {
                            *d += wk * xv;
                        }
                    }
                }
                let o = &mut out[co * t_out..(co + 1) * t_out];
                for (j, v) in o.iter_mut().enumerate() {
                    let full = j + self.pads.0;
                    *v = self.bias[co] + phases[(full % stride) * phase_len + full / stride];
                }
            }
        });
        out
    }
}

/// AdaIN (the predictor's [`AdaIn`]) and the Snake activation
/// `x + sin²(αx)/α` of one half-step.
struct AdaSnake {
    norm: AdaIn,
    alpha: Vec<f32>,
}

impl AdaSnake {
    fn apply(&self, x: &mut [f32], style: &[f32]) {
        self.norm.apply(x, style);
        let t = x.len() / self.alpha.len().max(1);
        for (row, &a) in x.chunks_exact_mut(t.max(1)).zip(&self.alpha) {
            let inv = 1.0 / a;
            for v in row.iter_mut() {
                let s = (a * *v).sin();
                *v += inv * (s * s);
            }
        }
    }
}

/// `AdaINResBlock1`: three steps of (AdaIN+Snake, dilated conv,
/// AdaIN+Snake, conv), each added to its input.
struct SnakeBlock {
    steps: Vec<(AdaSnake, QuantizedConv1d, AdaSnake, QuantizedConv1d)>,
}

impl SnakeBlock {
    fn load(graph: &OnnxGraph, name: &str) -> Result<Self> {
        let node = format!("{GEN}/{name}");
        let weights = format!("{GEN_WEIGHTS}.{name}");
        let steps = (0..3)
            .map(|j| {
                let ada = |n: &str| -> Result<AdaSnake> {
                    Ok(AdaSnake {
                        norm: AdaIn {
                            fc: QuantizedLinear::from_graph(
                                graph,
                                &format!("{node}/{n}.{j}/fc/Gemm_MatMul_quant"),
                                Some(&format!("{weights}.{n}.{j}.fc.bias")),
                            )?,
                        },
                        alpha: graph
                            .values(&format!(
                                "{weights}.alpha{}.{j}",
                                if n == "adain1" { 1 } else { 2 }
                            ))?
                            .1,
                    })
                };
                let conv = |n: &str| {
                    QuantizedConv1d::from_graph(
                        graph,
                        &format!("{node}/{n}.{j}/Conv_quant"),
                        Some(&format!("{weights}.{n}.{j}.bias")),
                    )
                };
                Ok((
                    ada("adain1")?,
                    conv("convs1")?,
                    ada("adain2")?,
                    conv("convs2")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { steps })
    }

    fn forward(&self, x: &[f32], style: &[f32]) -> Vec<f32> {
        let mut x = x.to_vec();
        for (n1, c1, n2, c2) in &self.steps {
            let mut h = x.clone();
            n1.apply(&mut h, style);
            let mut h = c1.forward(&h);
            n2.apply(&mut h, style);
            let h = c2.forward(&h);
            for (v, d) in x.iter_mut().zip(&h) {
                *v += d;
            }
        }
        x
    }
}

/// The generator.
pub struct Generator {
    harmonics: Vec<f32>,
    harmonic_bias: f32,
    window: Vec<f32>,
    noise_convs: Vec<QuantizedConv1d>,
    noise_res: Vec<SnakeBlock>,
    ups: Vec<FloatConv>,
    resblocks: Vec<SnakeBlock>,
    conv_post: FloatConv,
    inverse_basis: Vec<f32>,
    window_sum: Vec<f32>,
    dft: OrtDft,
}

impl Generator {
    /// Reads the generator's weights from the export.
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let linear = graph.node(&format!("{GEN}/m_source/l_linear/MatMul"), "MatMul")?;
        let (_, harmonics) = graph.values(linear.inputs.get(1).map_or("", String::as_str))?;
        let (_, bias) = graph.values(&format!("{GEN_WEIGHTS}.m_source.l_linear.bias"))?;
        let stft = graph.node(&format!("{GEN}/STFT"), "STFT")?;
        let (_, window) = graph.values(stft.inputs.get(2).map_or("", String::as_str))?;
        if window.len() != N_FFT || harmonics.len() != 9 {
            return Err(
                graph.corrupt("the generator's source or STFT differs from Kokoro's".into())
            );
        }
        let (_, inverse_basis) =
            graph.values(&format!("{GEN_WEIGHTS}.stft.istft.stft.inverse_basis"))?;
        let (_, window_sum) = graph.values(&format!("{GEN_WEIGHTS}.stft.istft.stft.window_sum"))?;
        Ok(Self {
            harmonics,
            harmonic_bias: bias.first().copied().unwrap_or(0.0),
            window,
            noise_convs: (0..2)
                .map(|i| {
                    QuantizedConv1d::from_graph(
                        graph,
                        &format!("{GEN}/noise_convs.{i}/Conv_quant"),
                        Some(&format!("{GEN_WEIGHTS}.noise_convs.{i}.bias")),
                    )
                })
                .collect::<Result<Vec<_>>>()?,
            noise_res: (0..2)
                .map(|i| SnakeBlock::load(graph, &format!("noise_res.{i}")))
                .collect::<Result<Vec<_>>>()?,
            ups: (0..2)
                .map(|i| {
                    FloatConv::load(
                        graph,
                        &format!("{GEN}/ups.{i}/ConvTranspose"),
                        "ConvTranspose",
                    )
                })
                .collect::<Result<Vec<_>>>()?,
            resblocks: (0..6)
                .map(|i| SnakeBlock::load(graph, &format!("resblocks.{i}")))
                .collect::<Result<Vec<_>>>()?,
            conv_post: FloatConv::load(graph, &format!("{GEN}/conv_post/Conv"), "Conv")?,
            inverse_basis,
            window_sum,
            dft: OrtDft::new(N_FFT),
        })
    }

    /// The harmonic source (`300·F` samples) from F0 (`F` frames): nine
    /// harmonics' phases accumulated at the frame rate and interpolated,
    /// 0.1·sin where F0 > 10 Hz, mixed by `l_linear` and tanh.
    pub fn source(&self, f0: &[f32]) -> Vec<f32> {
        let n = f0.len() * UPSAMPLE;
        let f0_up: Vec<f32> = (0..n).map(|i| f0[i / UPSAMPLE]).collect();
        let mut mix = vec![0f32; n];
        let mut sines = Vec::with_capacity(9);
        for h in 1..=9 {
            let rad: Vec<f32> = f0_up
                .iter()
                .map(|&f| {
                    let r = f * h as f32 / SAMPLE_RATE;
                    r - r.floor()
                })
                .collect();
            let down = resize_linear(&rad, 1.0 / UPSAMPLE as f32);
            let mut acc = 0f32;
            let phase: Vec<f32> = down
                .iter()
                .map(|&r| {
                    acc += r;
                    acc * 2.0 * std::f32::consts::PI * UPSAMPLE as f32
                })
                .collect();
            sines.push(resize_linear(&phase, UPSAMPLE as f32));
        }
        for (i, m) in mix.iter_mut().enumerate() {
            let voiced = if f0_up[i] > 10.0 { 1.0 } else { 0.0 };
            let s: f32 = (0..9)
                .map(|h| {
                    sines[h].get(i).map_or(0.0, |p| p.sin() * 0.1 * voiced) * self.harmonics[h]
                })
                .sum();
            *m = (s + self.harmonic_bias).tanh();
        }
        mix
    }

    /// The source's STFT (reflect-padded by 10, Hann window, hop 5) as 11
    /// magnitudes then 11 phases per frame (`22 × frames`); the phase is
    /// the export's `atan(im / re)` with its quadrant fix.
    pub fn source_spectrum(&self, source: &[f32]) -> Vec<f32> {
        let pad = N_FFT / 2;
        let n = source.len();
        let reflect = |i: isize| -> f32 {
            let j = if i < 0 {
                (-i) as usize
            } else if i as usize >= n {
                2 * (n - 1) - i as usize
            } else {
                i as usize
            };
            source.get(j).copied().unwrap_or(0.0)
        };
        let padded: Vec<f32> = (0..n + 2 * pad)
            .map(|i| reflect(i as isize - pad as isize))
            .collect();
        let frames = (padded.len() - N_FFT) / HOP + 1;
        let bins = N_FFT / 2 + 1;
        let mut out = vec![0f32; 2 * bins * frames];
        for f in 0..frames {
            let frame = &padded[f * HOP..f * HOP + N_FFT];
            for (k, (re, im)) in self
                .dft
                .transform(frame, &self.window, bins)
                .into_iter()
                .enumerate()
            {
                let magnitude = (re * re + im * im).sqrt();
                let base = (im / re).atan();
                let phase = if re < 0.0 {
                    if im > 0.0 {
                        base + std::f32::consts::PI
                    } else {
                        base - std::f32::consts::PI
                    }
                } else {
                    base
                };
                out[k * frames + f] = magnitude;
                out[(bins + k) * frames + f] = phase;
            }
        }
        out
    }

    /// The upsampling stages and `conv_post` on `x` (`512 × 2F`) with the
    /// source spectrum: `22 × frames` (log-magnitudes, then phases).
    pub fn body(&self, x: &[f32], spectrum: &[f32], style: &[f32]) -> Vec<f32> {
        let mut x = x.to_vec();
        for i in 0..2 {
            leaky(&mut x, 0.1);
            let source = self.noise_res[i].forward(&self.noise_convs[i].forward(spectrum), style);
            x = self.ups[i].transposed(&x);
            if i == 1 {
                // Reflection pad (1, 0).
                let c = self.ups[i].dims[1];
                let t = x.len() / c;
                x = x
                    .chunks_exact(t)
                    .flat_map(|row| {
                        std::iter::once(row.get(1).copied().unwrap_or(0.0))
                            .chain(row.iter().copied())
                    })
                    .collect();
            }
            for (v, s) in x.iter_mut().zip(&source) {
                *v += s;
            }
            let mut sum = self.resblocks[3 * i].forward(&x, style);
            for j in 1..3 {
                for (a, b) in sum
                    .iter_mut()
                    .zip(self.resblocks[3 * i + j].forward(&x, style))
                {
                    *a += b;
                }
            }
            x = sum.iter().map(|v| v / 3.0).collect();
        }
        leaky(&mut x, 0.01);
        self.conv_post.conv(&x)
    }

    /// The inverse STFT of `post` (`22 × frames`: exp of the first 11 rows
    /// as magnitudes, sin of the last 11 as phases), as the export does it:
    /// a transposed convolution with its inverse basis, the first 20
    /// samples divided by its stored window sum, × 4, 10 samples trimmed
    /// at each end.
    pub fn inverse(&self, post: &[f32]) -> Vec<f32> {
        let bins = N_FFT / 2 + 1;
        let frames = post.len() / (2 * bins);
        let mut spec = vec![0f32; 2 * bins * frames];
        for k in 0..bins {
            for f in 0..frames {
                let magnitude = post[k * frames + f].exp();
                let phase = post[(bins + k) * frames + f].sin();
                spec[k * frames + f] = magnitude * phase.cos();
                spec[(bins + k) * frames + f] = magnitude * phase.sin();
            }
        }
        let len = (frames.max(1) - 1) * HOP + N_FFT;
        let mut y = vec![0f32; len];
        for c in 0..2 * bins {
            let basis = &self.inverse_basis[c * N_FFT..(c + 1) * N_FFT];
            for f in 0..frames {
                let v = spec[c * frames + f];
                for (k, &b) in basis.iter().enumerate() {
                    y[f * HOP + k] += v * b;
                }
            }
        }
        for (v, &w) in y.iter_mut().zip(&self.window_sum) {
            if w > f32::MIN_POSITIVE {
                *v /= w;
            }
        }
        let trim = N_FFT / 2;
        y.iter()
            .skip(trim)
            .take(len.saturating_sub(2 * trim))
            .map(|v| v * 4.0)
            .collect()
    }

    /// Audio (24 kHz) from the decoder's output (`512 × 2F`), F0 (`2F`)
    /// and the decoder's style.
    pub fn forward(&self, x: &[f32], f0: &[f32], style: &[f32]) -> Vec<f32> {
        let spectrum = self.source_spectrum(&self.source(f0));
        self.inverse(&self.body(x, &spectrum, style))
    }
}

//! Kokoro's generator (`decoder.decoder.generator`, iSTFTNet): a harmonic
//! source from F0 (nine sines, no noise in the export), its 20-point STFT
//! as magnitude and phase, two upsampling stages (transposed convolution,
//! the source added through a strided convolution and an AdaIN Snake
//! residual block, three AdaIN Snake residual blocks averaged), `conv_post`
//! to 11 log-magnitudes and 11 phases, and the inverse STFT the export
//! computes by a transposed convolution. Integer layers in the export's
//! int8 arithmetic, the rest in f32 as the graph has it.

use crate::error::Result;
use rayon::prelude::*;

use crate::nn::cpu_gemm::{PackedMatrix, Start};
use crate::nn::cpu_ops::{sin, with_wide_vectors};
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

/// STFT frames a parallel piece of the source's spectrum takes.
const FRAMES: usize = 2048;
/// Values a parallel piece of an element-wise step takes.
const VALUES: usize = 1 << 14;

fn leaky(x: &mut [f32], slope: f32) {
    x.par_chunks_mut(VALUES).for_each(|piece| {
        for v in piece.iter_mut() {
            if *v < 0.0 {
                *v *= slope;
            }
        }
    });
}

/// `x += y`, element by element, in parallel pieces.
fn add(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(VALUES)
        .zip(y.par_chunks(VALUES))
        .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(a, b)| *a += b));
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

/// A float convolution or transposed convolution read from its node, as
/// matrix products on the packed GEMM: a convolution is one product of its
/// weights (`c_out × c_in·k`) with the shifted input rows; a transposed
/// convolution of stride `s` is `s` of them, one per output phase: phase
/// `r`'s taps `kk = r + m·s` add `w·x[q − m]` into output step `q·s + r`.
struct FloatConv {
    /// Per output phase (one for a convolution): the weights as a
    /// `c_out × (c_in · taps)` matrix, input-channel-major.
    phases: Vec<PackedMatrix>,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    /// Taps per phase.
    taps: usize,
    stride: usize,
    pads: (usize, usize),
}

/// Columns a parallel piece of a product takes.
const PIECE: usize = 2048;

impl FloatConv {
    fn load(graph: &OnnxGraph, node: &str, op: &str) -> Result<Self> {
        let found = graph.node(node, op)?;
        let input = |slot: usize| found.inputs.get(slot).cloned().unwrap_or_default();
        let (dims, weight) = graph.values(&input(1))?;
        let (_, bias) = graph.values(&input(2))?;
        let [a, b, kernel] = dims[..] else {
            return Err(graph.corrupt(format!("`{node}`: weight {dims:?}")));
        };
        if weight.len() != a * b * kernel {
            return Err(graph.corrupt(format!("`{node}`: {} weights for {dims:?}", weight.len())));
        }
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
        let stride = first(ints("strides"), 1).max(1);
        let transposed = op == "ConvTranspose";
        let c_out = if transposed { b } else { a };
        if group != 1 || kernel == 0 || (!transposed && stride != 1) || bias.len() != c_out {
            return Err(graph.corrupt(format!(
                "`{node}`: group {group}, stride {stride}, weight {dims:?}, {} biases",
                bias.len()
            )));
        }
        let pad = |k: usize| pads.get(k).map_or(0, |&p| usize::try_from(p).unwrap_or(0));
        Ok(Self::new(
            &weight,
            bias,
            [a, b, kernel],
            stride,
            (pad(0), pad(1)),
            transposed,
        ))
    }

    /// The layer from its weight (`dims`: `[out, in, k]` for a
    /// convolution, `[in, out, k]` for a transposed one, as ONNX stores
    /// them), bias, stride (1 for a convolution) and pads, its weights
    /// packed per phase.
    fn new(
        weight: &[f32],
        bias: Vec<f32>,
        [a, b, kernel]: [usize; 3],
        stride: usize,
        pads: (usize, usize),
        transposed: bool,
    ) -> Self {
        let (c_in, c_out) = if transposed { (a, b) } else { (b, a) };
        let stride = if transposed { stride.max(1) } else { 1 };
        // A convolution is a transposed one's single phase with every tap.
        let (count, taps) = if transposed {
            (stride, kernel.div_ceil(stride))
        } else {
            (1, kernel)
        };
        let phases = (0..count)
            .map(|r| {
                let mut w = vec![0f32; c_out * c_in * taps];
                for co in 0..c_out {
                    for ci in 0..c_in {
                        for m in 0..taps {
                            let (stored, kk) = if transposed {
                                ((ci * c_out + co) * kernel, r + m * stride)
                            } else {
                                ((co * c_in + ci) * kernel, m)
                            };
                            if kk < kernel {
                                w[(co * c_in + ci) * taps + m] =
                                    weight.get(stored + kk).copied().unwrap_or(0.0);
                            }
                        }
                    }
                }
                PackedMatrix::new(&w, c_out, c_in * taps)
            })
            .collect();
        Self {
            phases,
            bias,
            c_in,
            c_out,
            kernel,
            taps,
            stride,
            pads,
        }
    }

    /// `x` (`c_in × T`) with `before` and `after` zero steps around each row.
    fn padded(&self, x: &[f32], before: usize, after: usize) -> (Vec<f32>, usize) {
        let t = x.len() / self.c_in.max(1);
        let len = before + t + after;
        let mut padded = vec![0f32; self.c_in * len];
        padded
            .par_chunks_mut(len.max(1))
            .zip(x.par_chunks(t.max(1)))
            .for_each(|(row, src)| row[before..before + t].copy_from_slice(src));
        (padded, len)
    }

    /// `W · rows` for `n` steps (`c_out × n`), where row `ci·taps + m`
    /// starts at `padded[ci·len + offset(m)]`: pieces of the steps in
    /// parallel on rayon's pool, each on the packed GEMM.
    fn product(
        &self,
        w: &PackedMatrix,
        padded: &[f32],
        len: usize,
        offset: impl Fn(usize) -> usize + Sync,
        n: usize,
    ) -> Vec<f32> {
        let pieces: Vec<Vec<f32>> = (0..n.div_ceil(PIECE))
            .into_par_iter()
            .map(|p| {
                let (start, width) = (p * PIECE, PIECE.min(n - p * PIECE));
                let rows: Vec<&[f32]> = (0..self.c_in * self.taps)
                    .map(|j| {
                        let from = (j / self.taps) * len + offset(j % self.taps) + start;
                        &padded[from..from + width]
                    })
                    .collect();
                let mut out = vec![0f32; self.c_out * width];
                w.multiply(width, &mut out, width, &rows, Start::Zero, None);
                out
            })
            .collect();
        let mut out = vec![0f32; self.c_out * n];
        out.par_chunks_mut(n.max(1))
            .enumerate()
            .for_each(|(co, row)| {
                for (p, piece) in pieces.iter().enumerate() {
                    let width = piece.len() / self.c_out.max(1);
                    row[p * PIECE..p * PIECE + width]
                        .copy_from_slice(&piece[co * width..(co + 1) * width]);
                }
            });
        out
    }

    /// `Conv` (weight `[out, in, k]`), stride 1.
    fn conv(&self, x: &[f32]) -> Vec<f32> {
        let (padded, len) = self.padded(x, self.pads.0, self.pads.1);
        let t_out = (len + 1).saturating_sub(self.kernel);
        let mut out = match self.phases.first() {
            Some(w) => self.product(w, &padded, len, |m| m, t_out),
            None => Vec::new(),
        };
        out.par_chunks_mut(t_out.max(1))
            .zip(&self.bias)
            .for_each(|(row, &b)| row.iter_mut().for_each(|v| *v += b));
        out
    }

    /// `ConvTranspose` (weight `[in, out, k]`) by phase; nothing for an
    /// empty input.
    fn transposed(&self, x: &[f32]) -> Vec<f32> {
        let t = x.len() / self.c_in.max(1);
        if t == 0 {
            return Vec::new();
        }
        let stride = self.stride;
        let full_len = (t - 1) * stride + self.kernel;
        let t_out = full_len.saturating_sub(self.pads.0 + self.pads.1);
        // Phase step q reads x[q − m] for m < taps: taps − 1 zeros around.
        let edge = self.taps - 1;
        let (padded, len) = self.padded(x, edge, edge);
        let phase_len = t + edge;
        let phases: Vec<Vec<f32>> = self
            .phases
            .par_iter()
            .map(|w| self.product(w, &padded, len, |m| edge - m, phase_len))
            .collect();
        let mut out = vec![0f32; self.c_out * t_out];
        out.par_chunks_mut(t_out.max(1))
            .enumerate()
            .for_each(|(co, o)| {
                for (j, v) in o.iter_mut().enumerate() {
                    let full = j + self.pads.0;
                    let phase = &phases[full % stride];
                    *v = self.bias[co] + phase[co * phase_len + full / stride];
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
    /// Both on `x` (`C × T`), channel rows in parallel, each row normalized
    /// then activated while it is in cache; the sine is
    /// [`cpu_ops::sin`](crate::nn::cpu_ops::sin), which vectorizes.
    fn apply(&self, x: &mut [f32], style: &[f32]) {
        self.norm.apply_then(x, style, |k, row| {
            let Some(&a) = self.alpha.get(k) else {
                return;
            };
            let inv = 1.0 / a;
            with_wide_vectors(
                #[inline(always)]
                || {
                    for v in row.iter_mut() {
                        let s = sin(a * *v);
                        *v += inv * (s * s);
                    }
                },
            );
        });
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
            add(&mut x, &c2.forward(&h));
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
                .into_par_iter()
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
                .into_par_iter()
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
        let sines: Vec<Vec<f32>> = (1..=9)
            .into_par_iter()
            .map(|h| {
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
                resize_linear(&phase, UPSAMPLE as f32)
            })
            .collect();
        let mut mix = vec![0f32; n];
        mix.par_chunks_mut(VALUES)
            .enumerate()
            .for_each(|(piece, out)| {
                for (j, m) in out.iter_mut().enumerate() {
                    let i = piece * VALUES + j;
                    let voiced = if f0_up[i] > 10.0 { 1.0 } else { 0.0 };
                    let s: f32 = (0..9)
                        .map(|h| {
                            sines[h].get(i).map_or(0.0, |p| p.sin() * 0.1 * voiced)
                                * self.harmonics[h]
                        })
                        .sum();
                    *m = (s + self.harmonic_bias).tanh();
                }
            });
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
        // Frames in parallel pieces; each piece's columns are gathered into
        // the channel-major output afterwards.
        let pieces: Vec<Vec<f32>> = (0..frames.div_ceil(FRAMES))
            .into_par_iter()
            .map(|p| {
                let range = p * FRAMES..frames.min((p + 1) * FRAMES);
                let mut piece = Vec::with_capacity(range.len() * 2 * bins);
                for f in range {
                    let frame = &padded[f * HOP..f * HOP + N_FFT];
                    for (re, im) in self.dft.transform(frame, &self.window, bins) {
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
                        piece.push(magnitude);
                        piece.push(phase);
                    }
                }
                piece
            })
            .collect();
        let mut out = vec![0f32; 2 * bins * frames];
        for (p, piece) in pieces.iter().enumerate() {
            for (j, values) in piece.chunks_exact(2 * bins).enumerate() {
                let f = p * FRAMES + j;
                for (k, pair) in values.chunks_exact(2).enumerate() {
                    out[k * frames + f] = pair[0];
                    out[(bins + k) * frames + f] = pair[1];
                }
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
                let c = self.ups[i].c_out;
                let t = x.len() / c;
                x = x
                    .chunks_exact(t)
                    .flat_map(|row| {
                        std::iter::once(row.get(1).copied().unwrap_or(0.0))
                            .chain(row.iter().copied())
                    })
                    .collect();
            }
            add(&mut x, &source);
            let mut sum = self.resblocks[3 * i].forward(&x, style);
            for j in 1..3 {
                add(&mut sum, &self.resblocks[3 * i + j].forward(&x, style));
            }
            sum.par_chunks_mut(VALUES)
                .for_each(|piece| piece.iter_mut().for_each(|v| *v /= 3.0));
            x = sum;
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

#[cfg(test)]
mod tests {
    use super::FloatConv;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                ((state >> 8) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The products by phase against the definitions: `out[co][i] = b +
    /// Σ w[co][ci][k]·x[ci][i + k − pad]` and, transposed, `full[co][i·s +
    /// k] += w[ci][co][k]·x[ci][i]` trimmed by the pads (lengths that leave
    /// tails, a kernel that is not a multiple of the stride).
    #[test]
    fn convolutions_by_phase_equal_their_definitions() {
        let (c_in, c_out, t) = (5, 7, 37);
        let x = values(c_in * t, 1);
        for (kernel, stride, pads) in [(12, 6, (3, 3)), (20, 10, (5, 5)), (7, 3, (1, 2))] {
            let w = values(c_in * c_out * kernel, 2);
            let bias = values(c_out, 3);
            let layer = FloatConv::new(&w, bias.clone(), [c_in, c_out, kernel], stride, pads, true);
            let full_len = (t - 1) * stride + kernel;
            let mut full = vec![0f32; c_out * full_len];
            for ci in 0..c_in {
                for co in 0..c_out {
                    for k in 0..kernel {
                        for i in 0..t {
                            full[co * full_len + i * stride + k] +=
                                w[(ci * c_out + co) * kernel + k] * x[ci * t + i];
                        }
                    }
                }
            }
            let t_out = full_len - pads.0 - pads.1;
            let got = layer.transposed(&x);
            assert_eq!(got.len(), c_out * t_out);
            for co in 0..c_out {
                for j in 0..t_out {
                    let want = bias[co] + full[co * full_len + j + pads.0];
                    let have = got[co * t_out + j];
                    assert!(
                        (have - want).abs() < 1e-4,
                        "k {kernel} s {stride}: {have} vs {want}"
                    );
                }
            }
        }
        let kernel = 7;
        let w = values(c_out * c_in * kernel, 4);
        let bias = values(c_out, 5);
        let layer = FloatConv::new(&w, bias.clone(), [c_out, c_in, kernel], 1, (3, 3), false);
        let got = layer.conv(&x);
        assert_eq!(got.len(), c_out * t);
        for co in 0..c_out {
            for i in 0..t {
                let mut want = bias[co];
                for ci in 0..c_in {
                    for k in 0..kernel {
                        if let Some(xi) = (i + k).checked_sub(3).filter(|&j| j < t) {
                            want += w[(co * c_in + ci) * kernel + k] * x[ci * t + xi];
                        }
                    }
                }
                let have = got[co * t + i];
                assert!((have - want).abs() < 1e-4, "conv: {have} vs {want}");
            }
        }
    }
}

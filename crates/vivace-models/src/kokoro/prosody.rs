//! Kokoro's F0 and energy predictor (`encoder.predictor`'s `shared`, `F0`,
//! `N`, `F0_proj`, `N_proj`): the duration encoder's output expanded to
//! frames by the durations, a shared bidirectional LSTM, then for each of
//! F0 and energy three AdaIN residual blocks (the second doubling the
//! frame rate) and a 1×1 projection, in the export's int8 arithmetic.

use crate::error::Result;
use rayon::prelude::*;

use crate::nn::cpu_ops::with_wide_vectors;
use crate::nn::int8::{QuantizedConv1d, QuantizedLinear, QuantizedLstm};
use crate::onnx::OnnxGraph;

use super::text_encoder::transpose;

/// The branches' node paths in the export.
const BRANCHES: [&str; 2] = ["F0", "N"];

/// `x` (`C × T`, channel-major) with column `t` repeated `durations[t]`
/// times: the alignment product `x · A` (`C × frames`).
pub fn expand(x: &[f32], channels: usize, durations: &[usize]) -> Vec<f32> {
    let t = x.len() / channels.max(1);
    let frames: usize = durations.iter().take(t).sum();
    let mut out = Vec::with_capacity(channels * frames);
    for c in 0..channels {
        let row = &x[c * t..(c + 1) * t];
        for (&v, &d) in row.iter().zip(durations) {
            out.extend(std::iter::repeat_n(v, d));
        }
    }
    out
}

/// AdaIN: instance norm over time (ε 1e-5), then `(1 + γ)·x + β` with γ,
/// β a quantized linear map of the style. The generator's Snake blocks
/// use it too.
pub(crate) struct AdaIn {
    pub(crate) fc: QuantizedLinear,
}

impl AdaIn {
    /// `x` (`C × T`) normalized per channel and modulated by `style`,
    /// then `then(channel, row)` on each row while it is in cache; rows in
    /// parallel on rayon's pool.
    pub(crate) fn apply_then(
        &self,
        x: &mut [f32],
        style: &[f32],
        then: impl Fn(usize, &mut [f32]) + Sync,
    ) {
        let h = self.fc.forward(style);
        let c = h.len() / 2;
        let t = x.len() / c.max(1);
        let (gamma, beta) = h.split_at(c);
        x.par_chunks_exact_mut(t.max(1))
            .zip(gamma)
            .zip(beta)
            .enumerate()
            .for_each(|(k, ((row, &g), &b))| {
                normalize(row, g + 1.0, b);
                then(k, row);
            });
    }
}

/// `gain · (x − mean) / √(var + 1e-5) + shift` over one row, the mean and
/// variance summed in sixteen lanes (vectorized; the order differs from a
/// running sum only in rounding).
fn normalize(row: &mut [f32], gain: f32, shift: f32) {
    with_wide_vectors(
        #[inline(always)]
        || {
            let n = row.len() as f32;
            let mean = lane_sum(row, |v| v) / n;
            let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
            let sd = (var + 1e-5).sqrt();
            for v in row.iter_mut() {
                *v = gain * ((*v - mean) / sd) + shift;
            }
        },
    );
}

/// `Σ f(x)` in sixteen partial sums.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|&v| f(v)).sum::<f32>()
}

/// A depthwise transposed convolution (stride 2, width 3, padding 1,
/// output padding 1: doubles the frames), in float as in the export.
struct Upsampler {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Upsampler {
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let c = self.bias.len();
        let t = x.len() / c.max(1);
        let mut out = vec![0f32; c * 2 * t];
        for ch in 0..c {
            let w = &self.weight[ch * 3..ch * 3 + 3];
            let o = &mut out[ch * 2 * t..(ch + 1) * 2 * t];
            o.iter_mut().for_each(|v| *v = self.bias[ch]);
            for (i, &v) in x[ch * t..(ch + 1) * t].iter().enumerate() {
                for (k, &wk) in w.iter().enumerate() {
                    // Output index 2i − 1 + k (padding 1).
                    if let Some(j) = (2 * i + k).checked_sub(1).filter(|&j| j < 2 * t) {
                        o[j] += v * wk;
                    }
                }
            }
        }
        out
    }
}

/// `AdainResBlk1d`: (AdaIN, LeakyReLU, [upsample], conv, AdaIN, LeakyReLU,
/// conv) plus the shortcut ([nearest ×2], [1×1 conv where the widths
/// differ]), over √2. The F0 and energy branches and the decoder use it.
pub struct ResBlock {
    norm1: AdaIn,
    norm2: AdaIn,
    conv1: QuantizedConv1d,
    conv2: QuantizedConv1d,
    pool: Option<Upsampler>,
    shortcut: Option<QuantizedConv1d>,
}

fn leaky_relu(x: &mut [f32]) {
    for v in x.iter_mut() {
        if *v < 0.0 {
            *v *= 0.2;
        }
    }
}

impl ResBlock {
    /// The block whose nodes are under `node` (`/encoder/F0.1`) and whose
    /// named weights under `weights` (`encoder.predictor.F0.1`).
    pub fn load(graph: &OnnxGraph, node: &str, weights: &str) -> Result<Self> {
        let ada = |n: &str| -> Result<AdaIn> {
            Ok(AdaIn {
                fc: QuantizedLinear::from_graph(
                    graph,
                    &format!("{node}/{n}/fc/Gemm_MatMul_quant"),
                    Some(&format!("{weights}.{n}.fc.bias")),
                )?,
            })
        };
        let conv = |n: &str| {
            QuantizedConv1d::from_graph(
                graph,
                &format!("{node}/{n}/Conv_quant"),
                Some(&format!("{weights}.{n}.bias")),
            )
        };
        let pool = match graph.node(&format!("{node}/pool/ConvTranspose"), "ConvTranspose") {
            Ok(found) => {
                let input = |slot: usize| found.inputs.get(slot).cloned().unwrap_or_default();
                let (dims, weight) = graph.values(&input(1))?;
                let (_, bias) = graph.values(&input(2))?;
                if dims.get(2) != Some(&3) || weight.len() != bias.len() * 3 {
                    return Err(graph.corrupt(format!("`{node}/pool`: weight {dims:?}")));
                }
                Some(Upsampler { weight, bias })
            }
            Err(_) => None,
        };
        let conv1x1 = format!("{node}/conv1x1/Conv_quant");
        let shortcut = match graph.node(&conv1x1, "ConvInteger") {
            Ok(_) => Some(QuantizedConv1d::from_graph(graph, &conv1x1, None)?),
            Err(_) => None,
        };
        Ok(Self {
            norm1: ada("norm1")?,
            norm2: ada("norm2")?,
            conv1: conv("conv1")?,
            conv2: conv("conv2")?,
            pool,
            shortcut,
        })
    }

    /// `x` (`C × T`) through the block with the style: `C' × T` (`2T`
    /// where it upsamples).
    pub fn forward(&self, x: &[f32], style: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        self.norm1
            .apply_then(&mut h, style, |_, row| leaky_relu(row));
        if let Some(pool) = &self.pool {
            h = pool.forward(&h);
        }
        let mut h = self.conv1.forward(&h);
        self.norm2
            .apply_then(&mut h, style, |_, row| leaky_relu(row));
        let mut out = self.conv2.forward(&h);
        let upsampled = if self.pool.is_some() {
            nearest_twice(x, self.conv1.in_channels())
        } else {
            x.to_vec()
        };
        let shortcut = match &self.shortcut {
            Some(conv) => conv.forward(&upsampled),
            None => upsampled,
        };
        let root2 = std::f32::consts::SQRT_2;
        for (o, s) in out.iter_mut().zip(&shortcut) {
            *o = (*o + s) / root2;
        }
        out
    }
}

/// Each frame of `x` (`C × T`) twice (nearest-neighbour ×2).
fn nearest_twice(x: &[f32], channels: usize) -> Vec<f32> {
    let t = x.len() / channels.max(1);
    x.chunks_exact(t.max(1))
        .flat_map(|row| row.iter().flat_map(|&v| [v, v]))
        .collect()
}

/// The F0 and energy predictor.
pub struct ProsodyPredictor {
    shared: QuantizedLstm,
    /// Per branch (F0, N): its three blocks.
    blocks: Vec<Vec<ResBlock>>,
    /// Per branch: its projection to one channel.
    projections: Vec<QuantizedConv1d>,
}

impl ProsodyPredictor {
    /// Reads the predictor's weights from the export.
    pub fn load(graph: &OnnxGraph) -> Result<Self> {
        let blocks = BRANCHES
            .iter()
            .map(|b| {
                (0..3)
                    .map(|i| {
                        ResBlock::load(
                            graph,
                            &format!("/encoder/{b}.{i}"),
                            &format!("encoder.predictor.{b}.{i}"),
                        )
                    })
                    .collect()
            })
            .collect::<Result<Vec<Vec<_>>>>()?;
        let projections = BRANCHES
            .iter()
            .map(|b| {
                QuantizedConv1d::from_graph(
                    graph,
                    &format!("/encoder/{b}_proj/Conv_quant"),
                    Some(&format!("encoder.predictor.{b}_proj.bias")),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            shared: QuantizedLstm::from_graph(graph, "/encoder/shared/LSTM_quant")?,
            blocks,
            projections,
        })
    }

    /// The shared LSTM over `en` (`640 × frames`): `512 × frames`.
    pub fn shared(&self, en: &[f32]) -> Vec<f32> {
        let frames = en.len() / 640;
        let y = self.shared.forward(&transpose(en, 640, frames));
        transpose(&y, frames, y.len() / frames.max(1))
    }

    /// Block `i` of branch `branch` (0: F0, 1: energy) on `x` (`C × frames`).
    pub fn block(&self, branch: usize, i: usize, x: &[f32], style: &[f32]) -> Vec<f32> {
        match self.blocks.get(branch).and_then(|b| b.get(i)) {
            Some(block) => block.forward(x, style),
            None => x.to_vec(),
        }
    }

    /// Branch `branch`'s projection of its last block (`2·frames`).
    pub fn project(&self, branch: usize, x: &[f32]) -> Vec<f32> {
        self.projections
            .get(branch)
            .map_or_else(Vec::new, |p| p.forward(x))
    }

    /// F0 and energy (`2·frames` each) from `en` (`640 × frames`) and the
    /// predictor's style.
    pub fn forward(&self, en: &[f32], style: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let shared = self.shared(en);
        let branch = |b: usize| {
            let mut x = shared.clone();
            for i in 0..3 {
                x = self.block(b, i, &x, style);
            }
            self.project(b, &x)
        };
        (branch(0), branch(1))
    }
}

//! OpenVoice's reference encoder (`ReferenceEncoder` in `models.py`): a
//! linear spectrogram to the 256-value tone-colour embedding the converter
//! is conditioned on. A layer norm over the bins, six 3×3 stride-2
//! convolutions with ReLU, a GRU over the remaining frames, and a linear
//! layer from its last state.

use candle_core::{Module, Result, Tensor};
use candle_nn::rnn::{GRUConfig, GRU, RNN};
use candle_nn::{Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder};
use rayon::prelude::*;

/// Output channels of the six convolutions (fixed in the reference).
const FILTERS: [usize; 6] = [32, 32, 64, 64, 128, 128];
/// Hidden size of the GRU (`256 // 2` in the reference).
const GRU_HIDDEN: usize = 128;

/// The loaded encoder: `layernorm`, `convs.*`, `gru`, `proj`.
#[derive(Debug, Clone)]
pub struct ReferenceEncoder {
    layernorm: LayerNorm,
    convs: Vec<Conv2d>,
    gru: GRU,
    proj: Linear,
    bins: usize,
}

/// One of the encoder's convolutions on the CPU, as im2col and one matrix
/// product: candle's `conv2d` ran these at about 15 GFLOP/s, 3× PyTorch's
/// time for the whole encoder. `x` is `[1, c_in, h, w]`.
fn conv2d_3x3_stride2(x: &Tensor, conv: &Conv2d) -> Result<Tensor> {
    let (_, c_in, h, w) = x.dims4()?;
    let (h_out, w_out) = (halved(h), halved(w));
    let k = c_in * 9;
    let input = x.flatten_all()?.to_vec1::<f32>()?;
    // Row (c, di, dj) holds, for every output position (i, j), input
    // (c, 2i + di − 1, 2j + dj − 1), zero outside the input (padding 1):
    // written in order, read along input rows.
    let positions = h_out * w_out;
    let mut cols = vec![0f32; k * positions];
    cols.par_chunks_mut(positions)
        .enumerate()
        .for_each(|(r, row)| {
            let (c, di, dj) = (r / 9, (r % 9) / 3, r % 3);
            let plane = &input[c * h * w..(c + 1) * h * w];
            for i in 0..h_out {
                let Some(y) = (2 * i + di).checked_sub(1).filter(|&y| y < h) else {
                    continue;
                };
                let src = &plane[y * w..(y + 1) * w];
                let dst = &mut row[i * w_out..(i + 1) * w_out];
                // Input column 2j + dj − 1: only j = 0 (dj = 0) and the
                // last j can fall outside.
                for (j, d) in dst.iter_mut().enumerate() {
                    let x = 2 * j + dj;
                    if x >= 1 && x - 1 < w {
                        *d = src[x - 1];
                    }
                }
            }
        });
    let cols = Tensor::from_vec(cols, (k, positions), x.device())?;
    let weight = conv.weight().reshape((conv.weight().dim(0)?, k))?;
    let mut out = weight.matmul(&cols)?;
    if let Some(bias) = conv.bias() {
        out = out.broadcast_add(&bias.unsqueeze(1)?)?;
    }
    out.reshape((1, weight.dim(0)?, h_out, w_out))
}

/// Length after one 3×3 stride-2 convolution padded by 1.
fn halved(len: usize) -> usize {
    (len + 2 - 3) / 2 + 1
}

impl ReferenceEncoder {
    /// Loads the encoder for spectrograms of `bins` bins, giving embeddings
    /// of `embedding` values.
    pub fn new(bins: usize, embedding: usize, vb: VarBuilder) -> Result<Self> {
        let layernorm = candle_nn::layer_norm(bins, 1e-5, vb.pp("layernorm"))?;
        let conv_cfg = Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let mut convs = Vec::with_capacity(FILTERS.len());
        let mut in_channels = 1;
        for (i, &out) in FILTERS.iter().enumerate() {
            convs.push(candle_nn::conv2d(
                in_channels,
                out,
                3,
                conv_cfg,
                vb.pp(format!("convs.{i}")),
            )?);
            in_channels = out;
        }
        let width = (0..FILTERS.len()).fold(bins, |len, _| halved(len));
        let gru = candle_nn::rnn::gru(
            FILTERS[FILTERS.len() - 1] * width,
            GRU_HIDDEN,
            GRUConfig::default(),
            vb.pp("gru"),
        )?;
        let proj = candle_nn::linear(GRU_HIDDEN, embedding, vb.pp("proj"))?;
        Ok(Self {
            layernorm,
            convs,
            gru,
            proj,
            bins,
        })
    }

    /// The embedding `[embedding]` of a spectrogram `[frames, bins]`.
    pub fn forward(&self, spec: &Tensor) -> Result<Tensor> {
        let (frames, bins) = spec.dims2()?;
        if bins != self.bins {
            candle_core::bail!(
                "a spectrogram of {bins} bins, the encoder reads {}",
                self.bins
            );
        }
        let mut x = self
            .layernorm
            .forward(spec)?
            .reshape((1, 1, frames, bins))?;
        for conv in &self.convs {
            x = match x.device().is_cpu() {
                true => conv2d_3x3_stride2(&x, conv)?,
                false => conv.forward(&x)?,
            }
            .relu()?;
        }
        // [1, 128, T', W'] → [1, T', 128·W']: channels then width per step.
        let (_, channels, steps, width) = x.dims4()?;
        let x = x
            .transpose(1, 2)?
            .contiguous()?
            .reshape((1, steps, channels * width))?;
        let states = self.gru.seq(&x)?;
        let last = match states.last() {
            Some(state) => state.h.clone(),
            None => candle_core::bail!("a spectrogram of {frames} frames is too short"),
        };
        self.proj.forward(&last)?.squeeze(0)
    }
}

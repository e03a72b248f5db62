//! OpenVoice's reference encoder (`ReferenceEncoder` in `models.py`): a
//! linear spectrogram to the 256-value tone-colour embedding the converter
//! is conditioned on. A layer norm over the bins, six 3×3 stride-2
//! convolutions with ReLU, a GRU over the remaining frames, and a linear
//! layer from its last state.

use candle_core::{Module, Result, Tensor};
use candle_nn::rnn::{GRUConfig, GRU, RNN};
use candle_nn::{Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder};

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
            x = conv.forward(&x)?.relu()?;
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

//! The posterior encoder (`PosteriorEncoder` in VITS and OpenVoice): a
//! linear spectrogram to the latent `z` the flow and decoder read. A 1×1
//! convolution in, the shared WaveNet stack, a 1×1 convolution to means
//! and log-scales; `z = m + ε·exp(logs)` with the caller's `ε` (already
//! scaled by `tau`), or `z = m` without.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::nn::layers::{Conv, ConvSpec};
use crate::nn::wavenet::{WaveNet, WaveNetSpec};

/// The loaded encoder: `pre`, `enc`, `proj`.
#[derive(Debug, Clone)]
pub struct PosteriorEncoder {
    pre: Conv,
    enc: WaveNet,
    proj: Conv,
    out_channels: usize,
}

impl PosteriorEncoder {
    /// Loads an encoder from `in_channels` bins to `out_channels` latents
    /// through `wavenet`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        wavenet: &WaveNetSpec,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            pre: ConvSpec::new(in_channels, wavenet.hidden, 1).load(vb.pp("pre"))?,
            enc: WaveNet::new(wavenet, vb.pp("enc"))?,
            proj: ConvSpec::new(wavenet.hidden, 2 * out_channels, 1).load(vb.pp("proj"))?,
            out_channels,
        })
    }

    /// `z` `[1, out, frames]` of a spectrogram `[1, bins, frames]`,
    /// conditioned on `g`; `noise` `[1, out, frames]` is `ε·tau`.
    pub fn forward(
        &self,
        spec: &Tensor,
        g: Option<&Tensor>,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let x = self.pre.forward(spec)?;
        let x = self.enc.forward(&x, None, g)?;
        let stats = self.proj.forward(&x)?;
        let m = stats.narrow(1, 0, self.out_channels)?;
        match noise {
            None => Ok(m),
            Some(noise) => {
                let logs = stats.narrow(1, self.out_channels, self.out_channels)?;
                m + (noise * logs.exp()?)?
            }
        }
    }
}

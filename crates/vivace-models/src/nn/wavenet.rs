//! WaveNet's gated, dilated convolution stack as VITS writes it (`WN` in
//! [modules.py](https://github.com/jaywalnut310/vits/blob/main/modules.py)):
//! the body of VITS's flow couplings and of OpenVoice's posterior encoder.
//! Padded batches carry a mask; one utterance skips it.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::cpu_ops::gated_tanh_sigmoid;
use super::layers::{masked, Conv, ConvSpec};

/// The stack's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveNetSpec {
    /// Channels in, out and between layers.
    pub hidden: usize,
    /// Kernel width of the dilated convolutions.
    pub kernel: usize,
    /// Layer `i` dilates by `dilation_rate^i`.
    pub dilation_rate: usize,
    /// Gated layers.
    pub layers: usize,
    /// Channels of the global conditioning vector (`cond_layer`), if any.
    pub cond_channels: Option<usize>,
}

/// The loaded stack: `in_layers.*`, `res_skip_layers.*`, `cond_layer`.
#[derive(Debug, Clone)]
pub struct WaveNet {
    in_layers: Vec<Conv>,
    res_skip_layers: Vec<Conv>,
    cond_layer: Option<Conv>,
    hidden: usize,
}

impl WaveNet {
    /// Loads the stack of `spec` from `vb`.
    pub fn new(spec: &WaveNetSpec, vb: VarBuilder) -> Result<Self> {
        let (h, n) = (spec.hidden, spec.layers);
        let mut in_layers = Vec::with_capacity(n);
        let mut res_skip_layers = Vec::with_capacity(n);
        for i in 0..n {
            let dilation = spec.dilation_rate.pow(i as u32);
            in_layers.push(
                ConvSpec::new(h, 2 * h, spec.kernel)
                    .dilation(dilation)
                    .load(vb.pp(format!("in_layers.{i}")))?,
            );
            let out = if i + 1 < n { 2 * h } else { h };
            res_skip_layers
                .push(ConvSpec::new(h, out, 1).load(vb.pp(format!("res_skip_layers.{i}")))?);
        }
        let cond_layer = match spec.cond_channels {
            Some(channels) => {
                Some(ConvSpec::new(channels, 2 * h * n, 1).load(vb.pp("cond_layer"))?)
            }
            None => None,
        };
        Ok(Self {
            in_layers,
            res_skip_layers,
            cond_layer,
            hidden: h,
        })
    }

    /// `x` `[b, hidden, t]` to the masked sum of the layers' skip outputs;
    /// `g` `[b, cond_channels, 1]` conditions every layer (ignored by a
    /// stack without `cond_layer`).
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, g: Option<&Tensor>) -> Result<Tensor> {
        let h = self.hidden;
        let g = match (&self.cond_layer, g) {
            (Some(layer), Some(g)) => Some(layer.forward(g)?),
            _ => None,
        };
        let mut x = x.clone();
        let mut output: Option<Tensor> = None;
        let n = self.in_layers.len();
        for i in 0..n {
            let mut a = self.in_layers[i].forward(&x)?;
            if let Some(g) = &g {
                a = a.broadcast_add(&g.narrow(1, i * 2 * h, 2 * h)?)?;
            }
            let acts = gated_tanh_sigmoid(&a, h)?;
            let res_skip = self.res_skip_layers[i].forward(&acts)?;
            let skip = if i + 1 < n {
                x = masked(&(x + res_skip.narrow(1, 0, h)?)?, mask)?;
                res_skip.narrow(1, h, h)?
            } else {
                res_skip
            };
            output = Some(match output {
                Some(o) => (o + skip)?,
                None => skip,
            });
        }
        match output {
            Some(o) => masked(&o, mask),
            None => x.zeros_like(),
        }
    }
}

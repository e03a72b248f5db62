//! The HiFi-GAN generator: the flow's latent frames → waveform.
//!
//! Mirrors `Generator`, `ResBlock1` and `ResBlock2` of
//! [VITS](https://github.com/jaywalnut310/vits/blob/main/models.py) (from
//! [HiFi-GAN](https://arxiv.org/abs/2010.05646)), with weight norm already
//! folded into the weights. Difference: transposed convolutions run unpadded
//! and are trimmed (same result, faster on candle's CPU backend).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::cpu_gemm_int8::Lanes;
use super::cpu_mrf::MrfStage;
use super::cpu_ops;
use super::layers::{Conv, ConvSpec, TrimmedConvTranspose1d};

/// The residual block variant (`resblock` in VITS and HiFi-GAN configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum ResBlockKind {
    /// `ResBlock1`: three dilated/undilated convolution pairs (Piper "high", MMS).
    #[serde(rename = "1")]
    One,
    /// `ResBlock2`: two dilated convolutions (Piper "x_low", "low", "medium").
    #[serde(rename = "2")]
    Two,
}

/// A HiFi-GAN generator's shape, whatever model it decodes for (VITS's
/// `dec`, and the vocoders of models to come).
#[derive(Debug, Clone, PartialEq)]
pub struct HifiGanConfig {
    /// Channels of the input frames.
    pub in_channels: usize,
    /// Channels after `conv_pre` (halved at every upsampling).
    pub upsample_initial_channel: usize,
    /// Upsampling factor of each stage.
    pub upsample_rates: Vec<usize>,
    /// Kernel of each stage's transposed convolution.
    pub upsample_kernel_sizes: Vec<usize>,
    /// The residual block variant.
    pub resblock: ResBlockKind,
    /// Kernels of the residual blocks of each stage.
    pub resblock_kernel_sizes: Vec<usize>,
    /// Dilations of each residual block.
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    /// Channels of a global conditioning vector (`cond`, a speaker
    /// embedding), if the generator has one.
    pub cond_channels: Option<usize>,
}

impl HifiGanConfig {
    /// Waveform samples per input frame.
    pub fn hop_length(&self) -> usize {
        self.upsample_rates.iter().product()
    }

    /// Refuses a shape the generator cannot be built with, naming the field.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(candle_core::Error::Msg(format!("HiFi-GAN config: {what}")));
        if self.upsample_rates.len() != self.upsample_kernel_sizes.len() {
            return bad(format!(
                "{} upsample rates but {} upsample kernel sizes",
                self.upsample_rates.len(),
                self.upsample_kernel_sizes.len()
            ));
        }
        if self.resblock_kernel_sizes.len() != self.resblock_dilation_sizes.len() {
            return bad(format!(
                "{} residual block kernels but {} dilation lists",
                self.resblock_kernel_sizes.len(),
                self.resblock_dilation_sizes.len()
            ));
        }
        if self.resblock_kernel_sizes.is_empty() {
            return bad("no residual blocks".into());
        }
        for (&rate, &kernel) in self.upsample_rates.iter().zip(&self.upsample_kernel_sizes) {
            if rate == 0 || kernel < rate {
                return bad(format!(
                    "upsampling by {rate} with a kernel of {kernel}: the rate must be at least 1 and at most the kernel"
                ));
            }
        }
        if self.upsample_initial_channel >> self.upsample_rates.len() == 0 {
            return bad(format!(
                "{} channels cannot be halved {} times",
                self.upsample_initial_channel,
                self.upsample_rates.len()
            ));
        }
        Ok(())
    }
}

/// Slope of the leaky ReLUs inside the generator (`LRELU_SLOPE` in VITS).
const LRELU_SLOPE: f64 = 0.1;
/// Slope of the last leaky ReLU, before `conv_post` (PyTorch's default).
const FINAL_LRELU_SLOPE: f64 = 0.01;

/// A multi-receptive-field residual block: `convs1`/`convs2` pairs (type 1)
/// or single `convs` (type 2), each preceded by a leaky ReLU.
#[derive(Debug, Clone)]
struct ResBlock {
    /// Per residual step: the dilated convolution, and for type 1 the second one.
    steps: Vec<(Conv, Option<Conv>)>,
}

impl ResBlock {
    fn new(
        kind: ResBlockKind,
        channels: usize,
        kernel: usize,
        dilations: &[usize],
        vb: VarBuilder,
    ) -> Result<Self> {
        let spec = ConvSpec::new(channels, channels, kernel);
        let steps = dilations
            .iter()
            .enumerate()
            .map(|(i, &d)| match kind {
                ResBlockKind::One => Ok((
                    spec.dilation(d).load(vb.pp(format!("convs1.{i}")))?,
                    Some(spec.load(vb.pp(format!("convs2.{i}")))?),
                )),
                ResBlockKind::Two => {
                    Ok((spec.dilation(d).load(vb.pp(format!("convs.{i}")))?, None))
                }
            })
            .collect::<Result<_>>()?;
        Ok(Self { steps })
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (c1, c2) in &self.steps {
            x = match c2 {
                None => c1.forward_act(&x, LRELU_SLOPE, Some(&x))?,
                Some(c2) => {
                    let xt = c1.forward_act(&x, LRELU_SLOPE, None)?;
                    c2.forward_act(&xt, LRELU_SLOPE, Some(&x))?
                }
            };
        }
        Ok(x)
    }
}

/// The HiFi-GAN generator (the checkpoint's `dec`).
#[derive(Debug, Clone)]
pub struct Generator {
    conv_pre: Conv,
    cond: Option<Conv>,
    ups: Vec<TrimmedConvTranspose1d>,
    /// `resblock_kernel_sizes.len()` blocks per upsampling stage.
    resblocks: Vec<Vec<ResBlock>>,
    conv_post: Conv,
    span: tracing::Span,
}

impl Generator {
    /// Loads `conv_pre`, `ups.*`, `resblocks.*`, `conv_post` and `cond`,
    /// after checking `cfg`.
    pub fn new(cfg: &HifiGanConfig, vb: VarBuilder) -> Result<Self> {
        cfg.check()?;
        let c0 = cfg.upsample_initial_channel;
        let conv_pre = ConvSpec::new(cfg.in_channels, c0, 7).load(vb.pp("conv_pre"))?;
        let cond = match cfg.cond_channels {
            Some(channels) => Some(ConvSpec::new(channels, c0, 1).load(vb.pp("cond"))?),
            None => None,
        };
        let mut ups = Vec::new();
        let mut resblocks = Vec::new();
        let mut channels = c0;
        let kinds = cfg
            .resblock_kernel_sizes
            .iter()
            .zip(&cfg.resblock_dilation_sizes);
        for (i, (&rate, &kernel)) in cfg
            .upsample_rates
            .iter()
            .zip(&cfg.upsample_kernel_sizes)
            .enumerate()
        {
            let out = channels / 2;
            ups.push(TrimmedConvTranspose1d::new(
                channels,
                out,
                kernel,
                rate,
                (kernel - rate) / 2,
                vb.pp(format!("ups.{i}")),
            )?);
            let stage = kinds
                .clone()
                .enumerate()
                .map(|(j, (&k, d))| {
                    let index = i * cfg.resblock_kernel_sizes.len() + j;
                    ResBlock::new(cfg.resblock, out, k, d, vb.pp(format!("resblocks.{index}")))
                })
                .collect::<Result<_>>()?;
            resblocks.push(stage);
            channels = out;
        }
        let conv_post = ConvSpec::new(channels, 1, 7)
            .no_bias()
            .load(vb.pp("conv_post"))?;
        Ok(Self {
            conv_pre,
            cond,
            ups,
            resblocks,
            conv_post,
            span: tracing::span!(tracing::Level::TRACE, "hifigan"),
        })
    }

    /// Runs the upsamplers and residual blocks (all but a sliver of the
    /// generator's multiply-adds) on integer weights and per-tile integer
    /// activations, for `--precision int8` on the CPU: bytes everywhere but
    /// in the last stage's residual blocks, which take 16-bit words;
    /// `conv_pre` and `conv_post`, at the ends of the signal path, stay
    /// f32. Returns the number of convolutions quantized (none off the CPU
    /// or in bf16/f16).
    ///
    /// Measured on joe-medium (`docs/PERFORMANCE.md`): byte activations in
    /// the last stage, at the output rate, leave a noise floor in the quiet
    /// bands (log-mel distance to f32: 95th percentile 16 dB, against 2.4
    /// dB with that stage in f32).
    pub fn quantize(&mut self) -> usize {
        let stages = self.resblocks.len();
        let mut convs = 0;
        for up in &mut self.ups {
            convs += usize::from(up.quantize(Lanes::Bytes));
        }
        for (stage, blocks) in self.resblocks.iter_mut().enumerate() {
            let lanes = if stage + 1 == stages {
                Lanes::Words
            } else {
                Lanes::Bytes
            };
            for (c1, c2) in blocks.iter_mut().flat_map(|block| block.steps.iter_mut()) {
                for conv in std::iter::once(c1).chain(c2.as_mut()) {
                    convs += usize::from(conv.quantize(lanes));
                }
            }
        }
        convs
    }

    /// A stage's residual blocks run tile by tile in cache, where `x` is an
    /// f32 CPU tensor and every convolution has the CPU's dense f32 kernel
    /// (not after [`Self::quantize`]).
    fn stage_in_cache<'a>(blocks: &'a [ResBlock], x: &Tensor) -> Option<MrfStage<'a>> {
        if !cpu_ops::applies_to(x) {
            return None;
        }
        let convs = blocks
            .iter()
            .map(|block| {
                block
                    .steps
                    .iter()
                    .map(|(c1, c2)| {
                        let second = match c2 {
                            Some(c2) => Some(c2.fused()?),
                            None => None,
                        };
                        Some((c1.fused()?, second))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect::<Option<Vec<_>>>()?;
        MrfStage::new(&convs, x.dim(1).ok()?, LRELU_SLOPE as f32)
    }

    /// Decodes `z` `[batch, in_channels, frames]` into a waveform `[1, 1, samples]` in `[-1, 1]`.
    pub fn forward(&self, z: &Tensor, g: Option<&Tensor>) -> Result<Tensor> {
        let _enter = self.span.enter();
        let mut x = self.conv_pre.forward(z)?;
        if let (Some(cond), Some(g)) = (&self.cond, g) {
            x = x.broadcast_add(&cond.forward(g)?)?;
        }
        for (up, blocks) in self.ups.iter().zip(&self.resblocks) {
            x = up.forward_act(&x, LRELU_SLOPE)?;
            if let Some(stage) = Self::stage_in_cache(blocks, &x) {
                x = stage.forward(&x)?;
                continue;
            }
            let mut sum: Option<Tensor> = None;
            for block in blocks {
                let y = block.forward(&x)?;
                sum = Some(match sum {
                    Some(s) => (s + y)?,
                    None => y,
                });
            }
            if let Some(sum) = sum {
                x = (sum / blocks.len() as f64)?;
            }
        }
        self.conv_post
            .forward_act(&x, FINAL_LRELU_SLOPE, None)?
            .tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HifiGanConfig {
        HifiGanConfig {
            in_channels: 4,
            upsample_initial_channel: 8,
            upsample_rates: vec![2, 2],
            upsample_kernel_sizes: vec![4, 4],
            resblock: ResBlockKind::Two,
            resblock_kernel_sizes: vec![3],
            resblock_dilation_sizes: vec![vec![1, 3]],
            cond_channels: None,
        }
    }

    #[test]
    fn shapes_the_generator_cannot_take_are_refused_before_loading() {
        assert!(config().check().is_ok());
        assert_eq!(config().hop_length(), 4);
        let broken = [
            // A kernel below its rate made `(kernel - rate) / 2` underflow.
            HifiGanConfig {
                upsample_kernel_sizes: vec![1, 4],
                ..config()
            },
            HifiGanConfig {
                upsample_rates: vec![0, 2],
                ..config()
            },
            HifiGanConfig {
                upsample_rates: vec![2],
                ..config()
            },
            HifiGanConfig {
                resblock_dilation_sizes: Vec::new(),
                ..config()
            },
            HifiGanConfig {
                upsample_initial_channel: 2,
                ..config()
            },
        ];
        for cfg in broken {
            let err = cfg.check().expect_err("refused");
            assert!(err.to_string().contains("HiFi-GAN config"), "{err}");
        }
    }

    #[test]
    fn a_generator_builds_from_its_own_config_and_upsamples_by_the_hop() {
        let dev = candle_core::Device::Cpu;
        let vb = VarBuilder::from_varmap(&candle_nn::VarMap::new(), candle_core::DType::F32, &dev);
        let generator = Generator::new(&config(), vb).expect("generator");
        let z = Tensor::zeros((1, 4, 5), candle_core::DType::F32, &dev).expect("z");
        let audio = generator.forward(&z, None).expect("audio");
        assert_eq!(audio.dims(), &[1, 1, 20]);
    }

    /// int8 takes both upsamplers and both stages' two residual
    /// convolutions (bytes, words in the last), and stays near f32.
    #[test]
    fn quantizing_takes_the_upsamplers_and_residual_blocks() -> Result<()> {
        let dev = candle_core::Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &dev);
        Generator::new(&config(), vb.clone())?;
        // Random weights in place of the varmap's zeros, then load again.
        for var in varmap.all_vars() {
            var.set(&Tensor::randn(0f32, 0.3, var.shape(), &dev)?)?;
        }
        let f32_generator = Generator::new(&config(), vb)?;
        let mut int8 = f32_generator.clone();
        assert_eq!(int8.quantize(), 2 + 2 + 2);
        let z = Tensor::randn(0f32, 1.0, (1, 4, 50), &dev)?;
        let want = f32_generator.forward(&z, None)?;
        let got = int8.forward(&z, None)?;
        let err = ((&got - &want)?.sqr()?.sum_all()?.to_scalar::<f32>()?
            / want.sqr()?.sum_all()?.to_scalar::<f32>()?)
        .sqrt();
        assert!(err > 0.0 && err < 0.05, "int8 against f32: {err}");
        Ok(())
    }
}

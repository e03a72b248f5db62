//! OpenVoice v2's tone-colour converter (MyShell, MIT;
//! [models.py](https://github.com/myshell-ai/OpenVoice/blob/main/openvoice/models.py)
//! `SynthesizerTrn` with `n_speakers = 0`): re-voices speech with the
//! timbre of a reference recording.
//!
//! - [`ReferenceEncoder`] turns a linear spectrogram into a tone-colour
//!   embedding (`extract_se`);
//! - [`ToneColorConverter::convert`] runs `voice_conversion`: the posterior
//!   encoder reads the source's spectrogram, the flow maps it forward with
//!   the source's embedding and back with the target's, and the HiFi-GAN
//!   decoder (`nn::hifigan`) speaks the result.
//!
//! The published v2 config sets `zero_g`: the posterior encoder and the
//! decoder get a zero embedding (their `cond` layers still add their bias);
//! only the flow sees the speakers. The checkpoint is `checkpoint.pth` (a
//! `torch.save` zip, weights under `model`, weight norm folded at load) with
//! its `config.json`, read unchanged. The watermark the reference adds
//! (wavmark) is not part of the port.

mod posterior_encoder;
mod reference_encoder;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use posterior_encoder::PosteriorEncoder;
pub use reference_encoder::ReferenceEncoder;

use crate::nn::checkpoint::Checkpoint;
use crate::nn::hifigan::{Generator, HifiGanConfig, ResBlockKind};
use crate::nn::wavenet::WaveNetSpec;
use crate::vits::flow::{Flow, FlowSpec};
use crate::{Error, Result};

/// `data` of the converter's `config.json`: the audio it reads and writes.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct AudioConfig {
    /// Sample rate of input and output (22,050 Hz).
    pub sampling_rate: u32,
    /// FFT size of the spectrogram (1024: 513 bins).
    pub filter_length: usize,
    /// Samples per frame (256).
    pub hop_length: usize,
    /// Window length (the FFT size).
    pub win_length: usize,
    /// 0 for a converter (speakers come from embeddings).
    #[serde(default)]
    pub n_speakers: usize,
}

/// `model` of the converter's `config.json`; the text-side fields of the
/// shared VITS config (`filter_channels`, `n_heads`, …) are not used.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ModelConfig {
    /// Channels of the latent `z`.
    pub inter_channels: usize,
    /// Channels inside the posterior encoder and the flow.
    pub hidden_channels: usize,
    /// The decoder's residual block variant.
    pub resblock: ResBlockKind,
    /// Kernels of the decoder's residual blocks.
    pub resblock_kernel_sizes: Vec<usize>,
    /// Dilations of each residual block.
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    /// The decoder's upsampling factors (their product is the hop).
    pub upsample_rates: Vec<usize>,
    /// Channels after the decoder's first convolution.
    pub upsample_initial_channel: usize,
    /// Kernels of the decoder's transposed convolutions.
    pub upsample_kernel_sizes: Vec<usize>,
    /// Size of the tone-colour embedding (256).
    pub gin_channels: usize,
    /// Whether the posterior encoder and decoder get a zero embedding.
    #[serde(default)]
    pub zero_g: bool,
}

/// A converter's `config.json`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ConverterConfig {
    /// The audio side.
    pub data: AudioConfig,
    /// The network side.
    pub model: ModelConfig,
}

/// The posterior encoder's WaveNet: kernel 5, dilation rate 1, 16 layers
/// (fixed in `SynthesizerTrn`).
const POSTERIOR_WAVENET: (usize, usize, usize) = (5, 1, 16);
/// The flow: 4 couplings of 4-layer WaveNets, kernel 5, dilation rate 1.
const FLOW_COUPLINGS: usize = 4;
const FLOW_WAVENET: (usize, usize, usize) = (5, 1, 4);

impl ConverterConfig {
    /// Reads and checks `path` (a converter's `config.json`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: format!("not an OpenVoice converter config: {e}"),
        })?;
        config.check().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(config)
    }

    /// Bins of the linear spectrogram (`filter_length / 2 + 1`).
    pub fn bins(&self) -> usize {
        self.data.filter_length / 2 + 1
    }

    fn check(&self) -> std::result::Result<(), String> {
        let (d, m) = (&self.data, &self.model);
        if d.n_speakers != 0 {
            return Err(format!(
                "n_speakers is {}: this is a base speaker's TTS config, not the tone-colour converter's (n_speakers 0)",
                d.n_speakers
            ));
        }
        if d.win_length != d.filter_length || d.hop_length == 0 || d.hop_length > d.filter_length {
            return Err(format!(
                "spectrogram settings filter_length {}, hop_length {}, win_length {} are not supported (the window must be as long as the FFT)",
                d.filter_length, d.hop_length, d.win_length
            ));
        }
        let hop: usize = m.upsample_rates.iter().product();
        if hop != d.hop_length {
            return Err(format!(
                "the decoder upsamples by {hop} but hop_length is {}",
                d.hop_length
            ));
        }
        if d.sampling_rate == 0 || m.gin_channels == 0 || !m.inter_channels.is_multiple_of(2) {
            return Err(
                "sampling_rate and gin_channels must be positive, inter_channels even".into(),
            );
        }
        Ok(())
    }

    fn hifigan(&self) -> HifiGanConfig {
        let m = &self.model;
        HifiGanConfig {
            in_channels: m.inter_channels,
            upsample_initial_channel: m.upsample_initial_channel,
            upsample_rates: m.upsample_rates.clone(),
            upsample_kernel_sizes: m.upsample_kernel_sizes.clone(),
            resblock: m.resblock,
            resblock_kernel_sizes: m.resblock_kernel_sizes.clone(),
            resblock_dilation_sizes: m.resblock_dilation_sizes.clone(),
            cond_channels: Some(m.gin_channels),
        }
    }

    fn wavenet(&self, (kernel, dilation_rate, layers): (usize, usize, usize)) -> WaveNetSpec {
        WaveNetSpec {
            hidden: self.model.hidden_channels,
            kernel,
            dilation_rate,
            layers,
            cond_channels: Some(self.model.gin_channels),
        }
    }
}

/// The latents of one conversion, stage by stage (for parity checks).
#[derive(Debug, Clone)]
pub struct ConversionStages {
    /// The posterior encoder's `z` `[1, inter, frames]`.
    pub z: Tensor,
    /// `z` through the flow with the source embedding.
    pub z_p: Tensor,
    /// `z_p` back through the flow with the target embedding.
    pub z_hat: Tensor,
    /// The decoder's waveform `[frames · hop]`.
    pub audio: Vec<f32>,
    /// Wall time of the posterior encoder, the flow forward, the flow in
    /// reverse and the decoder.
    pub times: [std::time::Duration; 4],
}

/// The loaded converter.
#[derive(Debug, Clone)]
pub struct ToneColorConverter {
    config: ConverterConfig,
    ref_enc: ReferenceEncoder,
    enc_q: PosteriorEncoder,
    flow: Flow,
    dec: Generator,
    device: Device,
}

impl ToneColorConverter {
    /// Loads `checkpoint` (the published `checkpoint.pth`, weights under
    /// `model`) with its `config` on `device`, in f32.
    pub fn load(checkpoint: &Path, config: &Path, device: &Device) -> Result<Self> {
        let config = ConverterConfig::read(config)?;
        Checkpoint::build(
            checkpoint,
            Some("model"),
            "",
            DType::F32,
            device,
            "OpenVoice tone-colour converter",
            |vb| Self::new(config.clone(), vb),
        )
    }

    /// Builds the converter of `config` from `vb` (`ref_enc`, `enc_q`,
    /// `flow`, `dec`).
    pub fn new(config: ConverterConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let bins = config.bins();
        let inter = config.model.inter_channels;
        let ref_enc = ReferenceEncoder::new(bins, config.model.gin_channels, vb.pp("ref_enc"))?;
        let enc_q = PosteriorEncoder::new(
            bins,
            inter,
            &config.wavenet(POSTERIOR_WAVENET),
            vb.pp("enc_q"),
        )?;
        let flow = Flow::with_spec(
            &FlowSpec {
                channels: inter,
                couplings: FLOW_COUPLINGS,
                wavenet: config.wavenet(FLOW_WAVENET),
            },
            vb.pp("flow"),
        )?;
        let dec = Generator::new(&config.hifigan(), vb.pp("dec"))?;
        Ok(Self {
            device: vb.device().clone(),
            config,
            ref_enc,
            enc_q,
            flow,
            dec,
        })
    }

    /// The converter's config.
    pub fn config(&self) -> &ConverterConfig {
        &self.config
    }

    /// The tone-colour embedding `[gin_channels]` of a linear spectrogram
    /// (row-major `[frames, bins]`, as `vivace_frontend`'s
    /// `MelSpectrogram::vits_linear` gives it).
    pub fn embedding(&self, spec: &[f32]) -> Result<Vec<f32>> {
        let spec = self.spectrogram_tensor(spec)?;
        Ok(self.ref_enc.forward(&spec)?.to_vec1::<f32>()?)
    }

    /// Re-voices the speech of `spec` (row-major `[frames, bins]`) from the
    /// `source` embedding to the `target` one. `noise` (`[inter, frames]`,
    /// row-major, standard normal) times `tau` is the posterior's sampling
    /// noise, as the reference draws it; `None` or `tau = 0` is
    /// deterministic.
    pub fn convert(
        &self,
        spec: &[f32],
        source: &[f32],
        target: &[f32],
        noise: Option<(&[f32], f32)>,
    ) -> Result<Vec<f32>> {
        Ok(self.stages(spec, source, target, noise)?.audio)
    }

    /// [`ToneColorConverter::convert`] with its intermediate latents.
    pub fn stages(
        &self,
        spec: &[f32],
        source: &[f32],
        target: &[f32],
        noise: Option<(&[f32], f32)>,
    ) -> Result<ConversionStages> {
        let spec = self.spectrogram_tensor(spec)?;
        let frames = spec.dim(0)?;
        let spec = spec.t()?.contiguous()?.unsqueeze(0)?;
        let g_src = self.embedding_tensor(source, "source")?;
        let g_tgt = self.embedding_tensor(target, "target")?;
        let zeros = g_src.zeros_like()?;
        let inter = self.config.model.inter_channels;
        let noise = match noise {
            Some((values, tau)) if tau != 0.0 => {
                if values.len() != inter * frames {
                    return Err(Error::InvalidInput(format!(
                        "posterior noise of {} values, the converter needs {inter} × {frames}",
                        values.len()
                    )));
                }
                let eps = Tensor::from_slice(values, (1, inter, frames), &self.device)?;
                Some((eps * f64::from(tau))?)
            }
            _ => None,
        };
        let (g_enc, g_dec) = match self.config.model.zero_g {
            true => (&zeros, &zeros),
            false => (&g_src, &g_tgt),
        };
        let clock = std::time::Instant::now();
        let z = self.enc_q.forward(&spec, Some(g_enc), noise.as_ref())?;
        let t_enc = clock.elapsed();
        let z_p = self.flow.forward(&z, None, Some(&g_src))?;
        let t_fwd = clock.elapsed();
        let z_hat = self.flow.reverse(&z_p, None, Some(&g_tgt))?;
        let t_rev = clock.elapsed();
        let audio = self
            .dec
            .forward(&z_hat, Some(g_dec))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let t_dec = clock.elapsed();
        Ok(ConversionStages {
            z,
            z_p,
            z_hat,
            audio,
            times: [t_enc, t_fwd - t_enc, t_rev - t_fwd, t_dec - t_rev],
        })
    }

    /// `spec` as a `[frames, bins]` tensor, checked.
    fn spectrogram_tensor(&self, spec: &[f32]) -> Result<Tensor> {
        let bins = self.config.bins();
        if spec.is_empty() || !spec.len().is_multiple_of(bins) {
            return Err(Error::InvalidInput(format!(
                "a spectrogram of {} values is not whole frames of {bins} bins",
                spec.len()
            )));
        }
        Ok(Tensor::from_slice(
            spec,
            (spec.len() / bins, bins),
            &self.device,
        )?)
    }

    /// An embedding as the `[1, gin, 1]` conditioning tensor, checked.
    fn embedding_tensor(&self, values: &[f32], which: &str) -> Result<Tensor> {
        let gin = self.config.model.gin_channels;
        if values.len() != gin {
            return Err(Error::InvalidInput(format!(
                "the {which} tone-colour embedding has {} values, this converter's have {gin}",
                values.len()
            )));
        }
        Ok(Tensor::from_slice(values, (1, gin, 1), &self.device)?)
    }
}

//! VITS: end-to-end text-to-speech with a conditional VAE, normalizing flows
//! and a HiFi-GAN decoder ([Kim et al. 2021](https://arxiv.org/abs/2106.06103)).
//!
//! One implementation for every checkpoint of this family: Piper voices
//! (`crate::piper`) and, later, Hugging Face `VitsModel` checkpoints (MMS-TTS).
//! Weight paths follow the original VITS code
//! ([`models.py`](https://github.com/jaywalnut310/vits/blob/main/models.py)),
//! which Piper's ONNX exports keep: `enc_p`, `dp`, `flow`, `dec`, `emb_g`.

pub mod duration;
pub mod flow;
pub mod hifigan;
pub mod layers;
pub mod spline;
pub mod text_encoder;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use duration::{noise, Durations};
use flow::Flow;
use hifigan::Generator;
use text_encoder::TextEncoder;

/// The HiFi-GAN residual block variant (`resblock` in VITS configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum ResBlockKind {
    /// `ResBlock1`: three dilated/undilated convolution pairs (Piper "high", MMS).
    #[serde(rename = "1")]
    One,
    /// `ResBlock2`: two dilated convolutions (Piper "x_low", "low", "medium").
    #[serde(rename = "2")]
    Two,
}

/// VITS hyper-parameters. Field names are those of Hugging Face's
/// `VitsConfig` (the MMS `config.json`), plus `resblock`, which Piper needs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct VitsConfig {
    /// Number of phoneme/character ids.
    pub vocab_size: usize,
    /// Width of the text encoder, duration predictor input and flow's WaveNet.
    pub hidden_size: usize,
    /// Transformer layers in the text encoder.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Relative-position window of the attention (±positions).
    pub window_size: usize,
    /// Width of the transformer's feed-forward block.
    pub ffn_dim: usize,
    /// Kernel of the feed-forward convolutions.
    pub ffn_kernel_size: usize,
    /// Channels of the latent (prior and flow).
    pub flow_size: usize,
    /// Stochastic (flow-based) or deterministic duration predictor.
    pub use_stochastic_duration_prediction: bool,
    /// Channels inside the duration predictor.
    pub duration_predictor_filter_channels: usize,
    /// Kernel of the duration predictor's convolutions.
    pub duration_predictor_kernel_size: usize,
    /// Layers of each `DDSConv` stack.
    pub depth_separable_num_layers: usize,
    /// Spline bins of the duration flows.
    pub duration_predictor_flow_bins: usize,
    /// Spline support `[-bound, bound]`.
    pub duration_predictor_tail_bound: f64,
    /// Spline flows of the stochastic predictor (one is unused at inference).
    pub duration_predictor_num_flows: usize,
    /// Coupling layers of the flow.
    pub prior_encoder_num_flows: usize,
    /// WaveNet layers per coupling layer.
    pub prior_encoder_num_wavenet_layers: usize,
    /// WaveNet kernel.
    pub wavenet_kernel_size: usize,
    /// WaveNet dilation growth per layer.
    pub wavenet_dilation_rate: usize,
    /// Channels after the generator's first convolution.
    pub upsample_initial_channel: usize,
    /// Stride of each transposed convolution.
    pub upsample_rates: Vec<usize>,
    /// Kernel of each transposed convolution.
    pub upsample_kernel_sizes: Vec<usize>,
    /// Kernel of each residual block in a stage.
    pub resblock_kernel_sizes: Vec<usize>,
    /// Dilations of each residual block in a stage.
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    /// Residual block variant.
    #[serde(default = "default_resblock")]
    pub resblock: ResBlockKind,
    /// Number of speakers (1: no speaker embedding).
    pub num_speakers: usize,
    /// Width of the speaker embedding (`gin_channels`).
    pub speaker_embedding_size: usize,
    /// Epsilon of the channel layer norms.
    pub layer_norm_eps: f64,
    /// Output sample rate in Hz.
    pub sampling_rate: u32,
}

fn default_resblock() -> ResBlockKind {
    ResBlockKind::One
}

impl VitsConfig {
    /// Waveform samples per latent frame (product of the upsampling strides).
    pub fn hop_length(&self) -> usize {
        self.upsample_rates.iter().product()
    }
}

/// The knobs of one synthesis call (Piper's `scales` input and speaker id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthesisParams {
    /// Scale of the prior's noise (`noise_scale`, Piper default 0.667).
    pub noise_scale: f64,
    /// Duration multiplier: above 1 is slower (`length_scale`).
    pub length_scale: f64,
    /// Scale of the duration predictor's noise (`noise_w`, Piper default 0.8).
    pub noise_w: f64,
    /// Speaker index for multi-speaker voices.
    pub speaker: Option<u32>,
}

/// A loaded VITS model, ready to synthesize on its device.
#[derive(Debug, Clone)]
pub struct Vits {
    enc_p: TextEncoder,
    dp: Durations,
    flow: Flow,
    dec: Generator,
    emb_g: Option<Embedding>,
    cfg: VitsConfig,
    device: Device,
    dtype: DType,
}

impl Vits {
    /// Builds the model from weights under VITS names (`enc_p.*`, `dp.*`, …).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let emb_g = match cfg.num_speakers > 1 {
            true => Some(candle_nn::embedding(
                cfg.num_speakers,
                cfg.speaker_embedding_size,
                vb.pp("emb_g"),
            )?),
            false => None,
        };
        Ok(Self {
            enc_p: TextEncoder::new(cfg, vb.pp("enc_p"))?,
            dp: Durations::new(cfg, vb.pp("dp"))?,
            flow: Flow::new(cfg, vb.pp("flow"))?,
            dec: Generator::new(cfg, vb.pp("dec"))?,
            emb_g,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The hyper-parameters the model was built with.
    pub fn config(&self) -> &VitsConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Synthesizes one utterance from its ids; returns the float waveform
    /// (in `[-1, 1]`, before any volume normalization).
    pub fn synthesize(&self, ids: &[i64], params: &SynthesisParams) -> Result<Vec<f32>> {
        let wav = self.forward(ids, params)?;
        wav.flatten_all()?.to_dtype(DType::F32)?.to_vec1()
    }

    /// Synthesizes one utterance; the waveform stays on the device, `[1, 1, samples]`.
    pub fn forward(&self, ids: &[i64], params: &SynthesisParams) -> Result<Tensor> {
        if ids.is_empty() {
            candle_core::bail!("cannot synthesize an empty id sequence");
        }
        let ids_t = Tensor::from_slice(ids, (1, ids.len()), &self.device)?;
        let g = match &self.emb_g {
            Some(emb) => {
                let speaker = params.speaker.unwrap_or(0);
                if speaker as usize >= self.cfg.num_speakers {
                    candle_core::bail!(
                        "speaker {speaker} does not exist: this voice has speakers 0..{}",
                        self.cfg.num_speakers - 1
                    );
                }
                Some(
                    emb.forward(&Tensor::new(&[speaker], &self.device)?)?
                        .unsqueeze(2)?,
                )
            }
            None => None,
        };
        let enc = self.enc_p.forward(&ids_t)?;
        let logw = self.dp.forward(&enc.x, g.as_ref(), params.noise_w)?;
        let w = (logw.exp()? * params.length_scale)?.ceil()?;
        let durations = w.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;

        // Length regulation: repeat each token's prior statistics for its frames.
        let index: Vec<u32> = durations
            .iter()
            .enumerate()
            .flat_map(|(i, &d)| std::iter::repeat_n(i as u32, d.max(0.0) as usize))
            .collect();
        let (m_p, logs_p) = if index.is_empty() {
            // VITS clamps the length to one frame, whose alignment is empty (zeros).
            let z = Tensor::zeros((1, self.cfg.flow_size, 1), self.dtype, &self.device)?;
            (z.clone(), z)
        } else {
            let index = Tensor::from_vec(index.clone(), index.len(), &self.device)?;
            (
                enc.m_p.index_select(&index, 2)?,
                enc.logs_p.index_select(&index, 2)?,
            )
        };
        let z_p = if params.noise_scale == 0.0 {
            m_p
        } else {
            let (b, c, t) = m_p.dims3()?;
            let eps = noise((b, c, t), params.noise_scale, self.dtype, &self.device)?;
            (m_p + (eps * logs_p.exp()?)?)?
        };
        let z = self.flow.reverse(&z_p, g.as_ref())?;
        self.dec.forward(&z, g.as_ref())
    }
}

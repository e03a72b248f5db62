//! VITS: end-to-end text-to-speech with a conditional VAE, normalizing flows
//! and a HiFi-GAN decoder ([Kim et al. 2021](https://arxiv.org/abs/2106.06103)).
//!
//! One implementation for every checkpoint of this family: Piper voices
//! (`crate::piper`) and Hugging Face `VitsModel` checkpoints (MMS-TTS,
//! `crate::mms`, which maps their weight names onto these).
//! Weight paths follow the original VITS code
//! ([`models.py`](https://github.com/jaywalnut310/vits/blob/main/models.py)),
//! which Piper's ONNX exports keep: `enc_p`, `dp`, `flow`, `dec`, `emb_g`.

pub mod cost;
pub mod duration;
pub mod flow;
pub mod spline;
pub mod text_encoder;

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use crate::nn::cpu_ops;
pub use crate::nn::hifigan::ResBlockKind;
use crate::nn::hifigan::{Generator, HifiGanConfig};
use duration::{noise, Durations, NoiseStage};
use flow::Flow;
use text_encoder::TextEncoder;

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
    /// Whether the attention projections have a bias.
    #[serde(default = "default_true")]
    pub use_bias: bool,
    /// Output sample rate in Hz.
    pub sampling_rate: u32,
}

fn default_resblock() -> ResBlockKind {
    ResBlockKind::One
}

fn default_true() -> bool {
    true
}

impl VitsConfig {
    /// Waveform samples per latent frame (product of the upsampling strides).
    pub fn hop_length(&self) -> usize {
        self.upsample_rates.iter().product()
    }

    /// The decoder's shape: a HiFi-GAN over the flow's latents, conditioned
    /// on the speaker embedding in multi-speaker voices.
    pub fn hifigan(&self) -> HifiGanConfig {
        HifiGanConfig {
            in_channels: self.flow_size,
            upsample_initial_channel: self.upsample_initial_channel,
            upsample_rates: self.upsample_rates.clone(),
            upsample_kernel_sizes: self.upsample_kernel_sizes.clone(),
            resblock: self.resblock,
            resblock_kernel_sizes: self.resblock_kernel_sizes.clone(),
            resblock_dilation_sizes: self.resblock_dilation_sizes.clone(),
            cond_channels: (self.num_speakers > 1).then_some(self.speaker_embedding_size),
        }
    }
}

/// The knobs of one synthesis call (Piper's `scales` input and speaker id).
/// Its JSON form (field names as here) is what the CLI and the HTTP API
/// override; unknown fields are refused.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SynthesisParams {
    /// Scale of the prior's noise (`noise_scale`, Piper default 0.667).
    pub noise_scale: f64,
    /// Duration multiplier: above 1 is slower (`length_scale`).
    pub length_scale: f64,
    /// Scale of the duration predictor's noise (`noise_w`, Piper default 0.8).
    pub noise_w: f64,
    /// Speaker index for multi-speaker voices.
    pub speaker: Option<u32>,
    /// Seed of the noise: the same seed gives the same audio, alone or in a
    /// batch, on any machine's CPU; `None` draws from candle's generator.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// A model's decoder as a module: latents `[b, flow_size, frames]` to audio
/// `[b, 1, samples]`, without speaker conditioning.
#[derive(Debug, Clone)]
pub struct VitsDecoder(Vits);

impl Module for VitsDecoder {
    fn forward(&self, latents: &Tensor) -> Result<Tensor> {
        self.0.decode(latents, None)
    }
}

/// A loaded VITS model, ready to synthesize on its device.
///
/// Built in bf16 or f16, only the HiFi-GAN decoder computes in that dtype and
/// the rest stays in f32: on the default voice, rounding the text encoder's
/// weights alone to bf16 moves the waveform by 38 % (relative L2), the
/// decoder's by 0.4 % (`docs/PERFORMANCE.md`), and the decoder is where the
/// work is.
#[derive(Debug, Clone)]
pub struct Vits {
    enc_p: TextEncoder,
    dp: Durations,
    flow: Flow,
    dec: Generator,
    emb_g: Option<Embedding>,
    cfg: VitsConfig,
    device: Device,
    /// The dtype of everything but the decoder (f32 unless built in f64).
    dtype: DType,
    /// The decoder's dtype.
    decoder_dtype: DType,
    /// Time per stage, summed over calls (see [`Vits::stage_times`]).
    stage_times: std::sync::Arc<std::sync::Mutex<StageTimes>>,
    /// Whether stages are timed (see [`Vits::set_stage_timing`]).
    stage_timing: std::sync::Arc<AtomicBool>,
}

/// Wall time spent in each stage of synthesis, summed over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Text encoder.
    pub text_encoder: std::time::Duration,
    /// Duration predictor and durations to the host.
    pub duration_predictor: std::time::Duration,
    /// Length regulation (expanding token statistics to frames).
    pub length_regulation: std::time::Duration,
    /// Normalizing flow.
    pub flow: std::time::Duration,
    /// HiFi-GAN decoder.
    pub decoder: std::time::Duration,
}

impl StageTimes {
    fn add(&mut self, other: &StageTimes) {
        self.text_encoder += other.text_encoder;
        self.duration_predictor += other.duration_predictor;
        self.length_regulation += other.length_regulation;
        self.flow += other.flow;
        self.decoder += other.decoder;
    }

    /// Sum of the stages.
    pub fn total(&self) -> std::time::Duration {
        self.text_encoder
            + self.duration_predictor
            + self.length_regulation
            + self.flow
            + self.decoder
    }
}

/// Times consecutive stages; on an accelerator it synchronizes first, so a
/// stage's time is its own and not the launch time of queued kernels. Off,
/// it does nothing (no synchronization).
struct StageClock {
    on: bool,
    last: std::time::Instant,
    times: StageTimes,
}

impl StageClock {
    fn start(on: bool) -> Self {
        Self {
            on,
            last: std::time::Instant::now(),
            times: StageTimes::default(),
        }
    }

    fn lap(
        &mut self,
        produced: &Tensor,
        record: impl FnOnce(&mut StageTimes, std::time::Duration),
    ) -> Result<()> {
        if !self.on {
            return Ok(());
        }
        if !produced.device().is_cpu() {
            produced.device().synchronize()?;
        }
        let now = std::time::Instant::now();
        record(&mut self.times, now - self.last);
        self.last = now;
        Ok(())
    }
}

impl Vits {
    /// Builds the model from weights under VITS names (`enc_p.*`, `dp.*`, …).
    /// In bf16 or f16 only the decoder takes that dtype (see [`Vits`]).
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let decoder_dtype = vb.dtype();
        let full = match decoder_dtype {
            DType::BF16 | DType::F16 => vb.to_dtype(DType::F32),
            _ => vb.clone(),
        };
        let emb_g = match cfg.num_speakers > 1 {
            true => Some(candle_nn::embedding(
                cfg.num_speakers,
                cfg.speaker_embedding_size,
                full.pp("emb_g"),
            )?),
            false => None,
        };
        Ok(Self {
            enc_p: TextEncoder::new(cfg, full.pp("enc_p"))?,
            dp: Durations::new(cfg, full.pp("dp"))?,
            flow: Flow::new(cfg, full.pp("flow"))?,
            dec: Generator::new(&cfg.hifigan(), vb.pp("dec"))?,
            emb_g,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: full.dtype(),
            decoder_dtype,
            stage_times: Default::default(),
            stage_timing: std::sync::Arc::new(AtomicBool::new(vb.device().is_cpu())),
        })
    }

    /// Times each stage of the following calls (see [`Vits::stage_times`]),
    /// or stops. On an accelerator timing waits for the device after every
    /// stage, host synchronizations that synthesis does not need, so it is
    /// off there unless asked for (profiles, `say -v`, `bench
    /// --model-only`); on the CPU it is free and on.
    pub fn set_stage_timing(&self, on: bool) {
        self.stage_timing.store(on, Ordering::Relaxed);
    }

    /// Whether stages are being timed (see [`Vits::set_stage_timing`]).
    pub fn stage_timing(&self) -> bool {
        self.stage_timing.load(Ordering::Relaxed)
    }

    /// Which stages run Vivace's fused CPU kernels (the rule of
    /// [`cpu_ops::applies_on`]): `(text side, flow and durations; decoder)`.
    pub fn fused_kernels(&self) -> (bool, bool) {
        (
            cpu_ops::applies_on(&self.device, self.dtype),
            cpu_ops::applies_on(&self.device, self.decoder_dtype),
        )
    }

    /// Runs the HiFi-GAN decoder's upsamplers and residual blocks on int8
    /// weights and activations (`--precision int8`,
    /// [`Generator::quantize`]); returns how many convolutions changed
    /// (none unless the decoder runs the fused CPU kernels in f32).
    pub fn quantize_decoder(&mut self) -> usize {
        self.dec.quantize()
    }

    /// The dtype the decoder computes in (the rest is f32 unless it is f64).
    pub fn decoder_dtype(&self) -> DType {
        self.decoder_dtype
    }

    /// The HiFi-GAN decoder alone: latents `[b, flow_size, frames]` to audio
    /// `[b, 1, frames * hop]`, in the decoder's dtype (for benchmarks that
    /// time it the way PyTorch peers time `VitsModel.decoder`).
    pub fn decode(&self, latents: &Tensor, g: Option<&Tensor>) -> Result<Tensor> {
        let g = g.map(|g| g.to_dtype(self.decoder_dtype)).transpose()?;
        self.dec
            .forward(&latents.to_dtype(self.decoder_dtype)?, g.as_ref())
    }

    /// The decoder (no speaker conditioning) as a module of its own, for
    /// [`crate::nn::graph::CapturedGraph`].
    pub fn decoder(&self) -> VitsDecoder {
        VitsDecoder(self.clone())
    }

    /// The hyper-parameters the model was built with.
    pub fn config(&self) -> &VitsConfig {
        &self.cfg
    }

    /// Time spent per stage over all calls so far (for profiles and `-v`).
    pub fn stage_times(&self) -> StageTimes {
        self.stage_times.lock().map(|t| *t).unwrap_or_default()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Synthesizes one utterance from its ids; returns the float waveform
    /// (in `[-1, 1]`, before any volume normalization).
    pub fn synthesize(&self, ids: &[i64], params: &SynthesisParams) -> Result<Vec<f32>> {
        let mut out = self.synthesize_batch(&[(ids, *params)])?;
        out.pop()
            .ok_or_else(|| candle_core::Error::Msg("empty batch result".into()))
    }

    /// Synthesizes several utterances in one pass, padded to the longest and
    /// masked as VITS does; returns each one's waveform, trimmed to its own
    /// length. Each item has its own scales and speaker.
    pub fn synthesize_batch(&self, items: &[(&[i64], SynthesisParams)]) -> Result<Vec<Vec<f32>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut encoded = self.encode(items)?;
        let durations = self.predict_durations(items, &mut encoded)?;
        self.render(items, encoded, &durations)
    }

    /// Frames per input id as the duration predictor decides them (after
    /// `length_scale` and rounding up): the alignment a synthesis would use.
    pub fn durations(&self, ids: &[i64], params: &SynthesisParams) -> Result<Vec<u32>> {
        let items = [(ids, *params)];
        let mut encoded = self.encode(&items)?;
        let durations = self.predict_durations(&items, &mut encoded)?;
        Ok(durations[0].iter().map(|&n| n.max(0.0) as u32).collect())
    }

    /// Synthesizes with `durations` (frames per id) instead of the predicted
    /// ones, so that two models, precisions or devices can be compared
    /// sample by sample even where a predicted duration rounds the other way.
    pub fn synthesize_with_durations(
        &self,
        ids: &[i64],
        params: &SynthesisParams,
        durations: &[u32],
    ) -> Result<Vec<f32>> {
        if durations.len() != ids.len() {
            candle_core::bail!(
                "{} durations given for {} ids: one per id is needed",
                durations.len(),
                ids.len()
            );
        }
        let forced = [durations.iter().map(|&d| d as f32).collect::<Vec<f32>>()];
        check_durations(&forced[0])?;
        let items = [(ids, *params)];
        let encoded = self.encode(&items)?;
        let mut audio = self.render(&items, encoded, &forced)?;
        audio
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("empty batch result".into()))
    }

    /// The text side of a batch: ids padded to the longest, the text
    /// encoder's output, its mask and the speakers' embeddings.
    fn encode(&self, items: &[(&[i64], SynthesisParams)]) -> Result<Encoded> {
        if items.iter().any(|(ids, _)| ids.is_empty()) {
            candle_core::bail!("cannot synthesize an empty id sequence");
        }
        let (b, dev, dtype) = (items.len(), &self.device, self.dtype);
        let lengths: Vec<usize> = items.iter().map(|(ids, _)| ids.len()).collect();
        let t = lengths.iter().copied().max().unwrap_or(0);
        let mut padded = vec![0i64; b * t];
        for (row, (ids, _)) in padded.chunks_mut(t).zip(items) {
            row[..ids.len()].copy_from_slice(ids);
        }
        let ids = Tensor::from_vec(padded, (b, t), dev)?;
        let x_mask = padding_mask(&lengths, dtype, dev)?;

        let g = match &self.emb_g {
            Some(emb) => {
                let mut speakers = Vec::with_capacity(b);
                for (_, p) in items {
                    let speaker = p.speaker.unwrap_or(0);
                    if speaker as usize >= self.cfg.num_speakers {
                        candle_core::bail!(
                            "speaker {speaker} does not exist: this voice has speakers 0..{}",
                            self.cfg.num_speakers - 1
                        );
                    }
                    speakers.push(speaker);
                }
                Some(emb.forward(&Tensor::new(speakers, dev)?)?.unsqueeze(2)?)
            }
            None => None,
        };

        let mut clock = StageClock::start(self.stage_timing.load(Ordering::Relaxed));
        let enc = self.enc_p.forward(&ids, x_mask.as_ref())?;
        clock.lap(&enc.x, |t, d| t.text_encoder += d)?;
        Ok(Encoded {
            lengths,
            enc,
            x_mask,
            g,
            clock,
        })
    }

    /// Frames per id of each item (trimmed to its own length), from the
    /// duration predictor.
    fn predict_durations(
        &self,
        items: &[(&[i64], SynthesisParams)],
        e: &mut Encoded,
    ) -> Result<Vec<Vec<f32>>> {
        let (dev, dtype) = (&self.device, self.dtype);
        let noise_w = per_item(items, |p| p.noise_w, dtype, dev)?;
        let seeds = seeds(items);
        let logw = self.dp.forward(
            &e.enc.x,
            e.x_mask.as_ref(),
            e.g.as_ref(),
            noise_w.as_ref(),
            &seeds,
        )?;
        let length_scale = per_item(items, |p| p.length_scale, dtype, dev)?
            .unwrap_or(Tensor::zeros((items.len(), 1, 1), dtype, dev)?);
        let w = crate::nn::layers::masked(&logw.exp()?, e.x_mask.as_ref())?
            .broadcast_mul(&length_scale)?
            .ceil()?;
        let durations = w.to_dtype(DType::F32)?.squeeze(1)?.to_vec2::<f32>()?;
        e.clock.lap(&w, |t, d| t.duration_predictor += d)?;
        durations
            .into_iter()
            .zip(&e.lengths)
            .map(|(mut d, &len)| {
                d.truncate(len);
                check_durations(&d)?;
                Ok(d)
            })
            .collect()
    }

    /// The acoustic side on the given `durations` (frames per id, per
    /// item): length regulation, prior noise, flow and decoder; returns each
    /// item's waveform trimmed to its own length.
    fn render(
        &self,
        items: &[(&[i64], SynthesisParams)],
        e: Encoded,
        durations: &[Vec<f32>],
    ) -> Result<Vec<Vec<f32>>> {
        let (dev, dtype) = (&self.device, self.dtype);
        let Encoded {
            lengths,
            enc,
            g,
            mut clock,
            ..
        } = e;

        // Length regulation: repeat each token's prior statistics for its frames.
        let frames: Vec<Vec<u32>> = durations
            .iter()
            .zip(&lengths)
            .map(|(d, &len)| {
                d[..len]
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &n)| std::iter::repeat_n(i as u32, n.max(0.0) as usize))
                    .collect()
            })
            .collect();
        // VITS clamps each length to at least one frame (its alignment is empty: zeros).
        let frame_counts: Vec<usize> = frames.iter().map(|f| f.len().max(1)).collect();
        let longest = frame_counts.iter().copied().max().unwrap_or(1);
        let expand = |stats: &Tensor| -> Result<Tensor> {
            let rows = frames
                .iter()
                .enumerate()
                .map(|(i, idx)| {
                    let row = if idx.is_empty() {
                        Tensor::zeros((self.cfg.flow_size, 1), dtype, dev)?
                    } else {
                        let index = Tensor::new(idx.as_slice(), dev)?;
                        stats.get(i)?.contiguous()?.index_select(&index, 1)?
                    };
                    let len = row.dim(1)?;
                    row.pad_with_zeros(1, 0, longest - len)
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::stack(&rows, 0)
        };
        let m_p = expand(&enc.m_p)?;
        let y_mask = padding_mask(&frame_counts, dtype, dev)?;
        let z_p = match per_item(items, |p| p.noise_scale, dtype, dev)? {
            None => m_p,
            Some(scale) => {
                let seeds = seeds(items);
                let eps = noise(
                    m_p.dims3()?,
                    Some(&scale),
                    &seeds,
                    NoiseStage::Prior,
                    dtype,
                    dev,
                )?;
                (m_p + (eps * expand(&enc.logs_p)?.exp()?)?)?
            }
        };
        clock.lap(&z_p, |t, d| t.length_regulation += d)?;
        let z = self.flow.reverse(&z_p, y_mask.as_ref(), g.as_ref())?;
        clock.lap(&z, |t, d| t.flow += d)?;
        let z = crate::nn::layers::masked(&z, y_mask.as_ref())?;
        let audio = self.decode(&z, g.as_ref())?;
        clock.lap(&audio, |t, d| t.decoder += d)?;
        if let Ok(mut total) = self.stage_times.lock() {
            total.add(&clock.times);
        }
        let hop = self.cfg.hop_length();
        // One copy to the host for the whole batch, then each item's samples
        // cut there: on CUDA, `to_vec1` of a narrowed row copies the whole
        // batched storage, once per item.
        let rows = audio.squeeze(1)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        Ok(rows
            .into_iter()
            .zip(&frame_counts)
            .map(|(mut row, &n)| {
                row.truncate(n * hop);
                row
            })
            .collect())
    }
}

/// A batch after the text encoder (see [`Vits::encode`]).
struct Encoded {
    /// Ids per item.
    lengths: Vec<usize>,
    enc: text_encoder::EncodedText,
    x_mask: Option<Tensor>,
    /// Speaker embeddings `[b, gin, 1]`, for multi-speaker voices.
    g: Option<Tensor>,
    /// Stage times so far.
    clock: StageClock,
}

/// Each item's noise seed (see [`duration::noise`]).
fn seeds(items: &[(&[i64], SynthesisParams)]) -> Vec<Option<u64>> {
    items.iter().map(|(_, p)| p.seed).collect()
}

/// One scale per item as `[b, 1, 1]`, or `None` when all are 0 (the
/// scaled term is skipped).
fn per_item(
    items: &[(&[i64], SynthesisParams)],
    scale: impl Fn(&SynthesisParams) -> f64,
    dtype: DType,
    dev: &Device,
) -> Result<Option<Tensor>> {
    let values: Vec<f32> = items.iter().map(|(_, p)| scale(p) as f32).collect();
    if values.iter().all(|&v| v == 0.0) {
        return Ok(None);
    }
    Tensor::from_vec(values, (items.len(), 1, 1), dev)?
        .to_dtype(dtype)
        .map(Some)
}

/// The most frames one id may last: 95 s at Piper's 22,050 Hz and hop 256
/// (86 frames per second), far beyond any spoken sound.
pub const MAX_FRAMES_PER_ID: u32 = 1 << 13;

/// The most frames one item (a sentence) may last in total: 6 min 20 s at
/// Piper's frame rate. The decoder's activations grow linearly with it, so
/// a runaway length scale is an error instead of an allocation failure or
/// an hour-long decoder run.
pub const MAX_FRAMES_PER_ITEM: u32 = 1 << 15;

/// A sentence too long to synthesize in one piece: what [`check_durations`]
/// refuses, typed so the CLI and the server can name their own fix
/// (`--length-scale`, `speed`). It travels inside candle's error; find it
/// with [`too_long`].
#[derive(Clone, PartialEq, thiserror::Error)]
pub enum TooLong {
    /// One id would last more than [`MAX_FRAMES_PER_ID`] frames (or an
    /// infinite or NaN number).
    #[error("one phoneme would last {frames} frames: at most {MAX_FRAMES_PER_ID} are synthesized")]
    Phoneme {
        /// Its predicted frames, after the length scale.
        frames: f32,
    },
    /// The sentence would last more than [`MAX_FRAMES_PER_ITEM`] frames.
    #[error("the sentence would last {frames} frames: at most {MAX_FRAMES_PER_ITEM} are synthesized in one piece")]
    Sentence {
        /// Its predicted frames, after the length scale.
        frames: f64,
    },
}

/// Candle prints a wrapped error with `{:?}`: make that the message too.
impl std::fmt::Debug for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The [`TooLong`] inside `error`, if that is what it is.
pub fn too_long(error: &candle_core::Error) -> Option<&TooLong> {
    match error {
        candle_core::Error::WrappedContext { wrapped, .. } => wrapped.downcast_ref::<TooLong>(),
        candle_core::Error::WithBacktrace { inner, .. }
        | candle_core::Error::Context { inner, .. }
        | candle_core::Error::WithPath { inner, .. } => too_long(inner),
        _ => None,
    }
}

/// Checks one item's durations (frames per id, after the length scale)
/// against [`MAX_FRAMES_PER_ID`] and [`MAX_FRAMES_PER_ITEM`]; infinite or
/// NaN durations (an overflowing length scale, broken weights) are errors too.
fn check_durations(durations: &[f32]) -> Result<()> {
    let refuse = |too_long: TooLong| {
        Err(candle_core::Error::WrappedContext {
            wrapped: Box::new(too_long),
            context: "lower the length scale, or split the text".into(),
        })
    };
    if let Some(&frames) = durations
        .iter()
        .find(|d| !d.is_finite() || **d > MAX_FRAMES_PER_ID as f32)
    {
        return refuse(TooLong::Phoneme { frames });
    }
    let frames: f64 = durations.iter().map(|&d| f64::from(d.max(0.0))).sum();
    if frames > f64::from(MAX_FRAMES_PER_ITEM) {
        return refuse(TooLong::Sentence { frames });
    }
    Ok(())
}

/// `[b, 1, longest]` with 1 on each item's first `lengths[i]` positions, or
/// `None` when every item has the same length (nothing to mask).
fn padding_mask(lengths: &[usize], dtype: DType, device: &Device) -> Result<Option<Tensor>> {
    let longest = lengths.iter().copied().max().unwrap_or(0);
    if lengths.iter().all(|&l| l == longest) {
        return Ok(None);
    }
    let mask: Vec<f32> = lengths
        .iter()
        .flat_map(|&l| (0..longest).map(move |j| if j < l { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (lengths.len(), 1, longest), device)?
        .to_dtype(dtype)
        .map(Some)
}

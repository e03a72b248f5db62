//! T3, Chatterbox's text-to-speech-token half: a transformer backbone fed
//! with conditioning, text and speech embeddings of its own, decoding S3
//! speech tokens one at a time (with classifier-free guidance, except
//! Turbo).
//!
//! The weights are read from the published files unchanged
//! (`t3_cfg.safetensors`, `t3_mtl23ls_v2.safetensors`,
//! `t3_turbo_v1.safetensors`): tensor names as the
//! reference's `T3` saves them (`tfmr.*`, `cond_enc.*`, `text_emb`,
//! `speech_emb`, `text_pos_emb.emb`, `speech_pos_emb.emb`, `speech_head`).
//! The sizes (width, layers, MLP, vocabularies, position tables) are read
//! from the tensor shapes, with the reference's fixed head width of 64, so
//! small random checkpoints load as the real ones do.
//!
//! One sequence is decoded as the reference's `T3.inference` does it:
//! - the input is `[conditioning | text | BOS | BOS]`: BOS twice, since the
//!   reference appends it after `prepare_input_embeds` already did; the
//!   unconditional row has its text embeddings zeroed before the position
//!   embeddings are added; generated token `i` gets speech position `i + 1`;
//! - each step combines the rows as `cond + w · (cond − uncond)`, then the
//!   [`Sampler`] applies the repetition penalty (over BOS and the tokens so
//!   far), temperature, min-p and top-p, and draws.
//!
//! Turbo (`inference_turbo`) differs: a GPT-2 backbone with its own learned
//! positions and no T3 position tables, no perceiver and no emotion input
//! (the 375 prompt tokens go in as they are), text without start and stop
//! tokens, BOS once, one row (no guidance), and the sampler's order is
//! temperature, top-k, top-p, then the repetition penalty over the tokens
//! generated so far (BOS alone at the first step).
//!
//! The multilingual T3 also runs the reference's alignment analyzer
//! ([`AlignmentAnalyzer`]) between guidance and the sampler: three heads'
//! attention over the text decide when the stop token may or must come.

mod alignment;
mod backbone;
mod conditioning;
mod perceiver;
pub mod timing;

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear as CandleLinear, VarBuilder};
use serde::{Deserialize, Serialize};

pub use alignment::{aligned_heads, AlignmentAnalyzer, AlignmentVerdict, LLAMA_ALIGNED_HEADS};
pub use backbone::{
    Architecture, AttentionProbe, Backbone, BackboneCache, BackboneConfig, Llama3Scaling,
    LLAMA3_SCALING,
};
pub use conditioning::{T3Conditioning, SPEAKER_EMBEDDING};
pub use perceiver::Perceiver;

use crate::nn::checkpoint::Checkpoint;
use crate::nn::linear::Linear;
pub use crate::nn::linear::Precision;
use crate::nn::random_weights::RandomWeights;
use crate::nn::sampling::{Sampler, SamplingError, UniformSource, Warp};
use crate::{Error, Result};

/// The text token that starts a text (`[START]`).
pub const START_TEXT: u32 = 255;
/// The text token that ends it (`[STOP]`).
pub const STOP_TEXT: u32 = 0;
/// The speech token that starts speech (after the 6561 S3 codes).
pub const START_SPEECH: u32 = 6561;
/// The speech token that ends it.
pub const STOP_SPEECH: u32 = 6562;
/// Speech tokens S3Gen can speak (FSQ with 3⁸ codes): every token below.
pub const SPEECH_CODES: u32 = 6561;
/// The width of an attention head in every published T3.
pub const HEAD_DIM: usize = 64;
/// The multilingual model's text vocabulary.
const MULTILINGUAL_TEXT_VOCAB: usize = 2454;
/// The perceiver's learned queries in every published English and
/// multilingual T3 (`pre_attention_query` `[1, 32, 1024]`).
const PERCEIVER_QUERIES: usize = 32;

/// Which published T3 a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum T3Variant {
    /// English (`t3_cfg.safetensors`, a 704-token text vocabulary).
    English,
    /// 23 languages (`t3_mtl23ls_v2.safetensors`, 2454 text tokens).
    Multilingual,
    /// English on a GPT-2 backbone (`t3_turbo_v1.safetensors`, GPT-2's
    /// 50276 text tokens).
    Turbo,
}

/// The sizes of a T3 model, read from its checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct T3Config {
    /// The variant (from the text vocabulary).
    pub variant: T3Variant,
    /// The backbone.
    pub backbone: BackboneConfig,
    /// Text tokens.
    pub text_vocab: usize,
    /// Speech tokens (the 6561 codes, start, stop, padding).
    pub speech_vocab: usize,
    /// Rows of the text position table (text length with start and stop).
    pub text_positions: usize,
    /// Rows of the speech position table (prompt, or BOS and generated tokens).
    pub speech_positions: usize,
    /// The (layer, head) pairs the alignment analyzer reads (multilingual
    /// only; empty: no analyzer).
    pub aligned_heads: Vec<(usize, usize)>,
}

/// Decoding settings of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeParams {
    /// Classifier-free guidance weight (0: the conditional row alone).
    pub cfg_weight: f32,
    /// Sampling temperature (0: greedy, the most likely token).
    pub temperature: f32,
    /// Repetition penalty (1: off).
    pub repetition_penalty: f32,
    /// Min-p cut (0: off).
    pub min_p: f32,
    /// Top-p cut (1: off).
    pub top_p: f32,
    /// Top-k cut (0: off; Turbo only, as in the reference).
    #[serde(default)]
    pub top_k: usize,
    /// Speech tokens at most (25 per second of audio).
    pub max_tokens: usize,
}

impl DecodeParams {
    /// The reference's defaults for `variant` (`tts.py`, `mtl_tts.py`).
    /// The reference's defaults for `variant` (`tts.py`, `mtl_tts.py`,
    /// `tts_turbo.py`).
    pub fn defaults(variant: T3Variant) -> Self {
        match variant {
            T3Variant::Turbo => Self {
                cfg_weight: 0.0,
                temperature: 0.8,
                repetition_penalty: 1.2,
                min_p: 0.0,
                top_p: 0.95,
                top_k: 1000,
                max_tokens: 1000,
            },
            _ => Self {
                cfg_weight: 0.5,
                temperature: 0.8,
                repetition_penalty: match variant {
                    T3Variant::Multilingual => 2.0,
                    _ => 1.2,
                },
                min_p: 0.05,
                top_p: 1.0,
                top_k: 0,
                max_tokens: 1000,
            },
        }
    }

    /// The sampler these settings describe, in the reference's order for
    /// `variant`.
    fn sampler(&self, variant: T3Variant) -> std::result::Result<Sampler, SamplingError> {
        if !(self.cfg_weight.is_finite() && self.cfg_weight >= 0.0) {
            return Err(SamplingError::InvalidParameter(
                "cfg_weight must be 0 (off) or positive".into(),
            ));
        }
        let top_k = (self.top_k > 0).then_some(Warp::TopK(self.top_k));
        Sampler::new(match variant {
            // `inference_turbo`: min-p is not applied (the reference warns).
            T3Variant::Turbo => [Warp::Temperature(self.temperature)]
                .into_iter()
                .chain(top_k)
                .chain([
                    Warp::TopP(self.top_p),
                    Warp::RepetitionPenalty(self.repetition_penalty),
                ])
                .collect(),
            _ => [
                Warp::RepetitionPenalty(self.repetition_penalty),
                Warp::Temperature(self.temperature),
                Warp::MinP(self.min_p),
            ]
            .into_iter()
            .chain(top_k)
            .chain([Warp::TopP(self.top_p)])
            .collect(),
        })
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model emitted the stop token.
    Stop,
    /// It reached the maximum token count without one.
    MaxTokens,
}

/// Where a prefill starts: from the conditioning itself, or after a
/// voice's prefix already run.
#[derive(Clone, Copy)]
enum PromptStart<'a> {
    Whole(&'a Tensor),
    After(&'a T3Prefix),
}

/// A voice's conditioning after the backbone: its positions' keys and
/// values (one row), made by [`T3::start_keeping_prefix`] once per voice and continued
/// by [`T3::start_after`] for each sentence.
#[derive(Debug, Clone)]
pub struct T3Prefix {
    positions: usize,
    cache: BackboneCache,
}

impl T3Prefix {
    /// Bytes its keys and values take (Turbo's 376 positions: 74 MB in
    /// f32; the Llama variants' 34: 8.4 MB).
    pub fn bytes(&self) -> usize {
        self.cache.bytes()
    }
}

/// One sequence being decoded: its cache, its tokens, its last logits, its
/// source of random draws.
pub struct Generation {
    cache: BackboneCache,
    /// 2 with guidance (conditional, unconditional), else 1.
    rows: usize,
    /// The last forward's speech logits, `rows × vocab`.
    logits: Vec<f32>,
    /// BOS, then every generated token.
    history: Vec<u32>,
    sampler: Sampler,
    cfg_weight: f32,
    max_tokens: usize,
    finish: Option<Finish>,
    source: Box<dyn UniformSource + Send>,
    /// The multilingual model's alignment analyzer.
    analyzer: Option<AlignmentAnalyzer>,
    /// Turbo's penalty sees the generated tokens only (BOS at first).
    penalize_generated_only: bool,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("rows", &self.rows)
            .field("generated", &self.generated().len())
            .field("finish", &self.finish)
            .finish()
    }
}

impl Generation {
    /// The last forward's raw speech logits (the conditional row first).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Tokens generated so far (the stop token included when drawn).
    pub fn generated(&self) -> &[u32] {
        &self.history[1..]
    }

    /// Why it ended, once it has.
    pub fn finish(&self) -> Option<Finish> {
        self.finish
    }

    /// The speech tokens S3Gen speaks (`drop_invalid_tokens`): after the
    /// first start token if one was drawn, up to the stop token, and only
    /// S3 codes (the English reference's filter, applied to every variant
    /// so that no out-of-range id reaches S3Gen).
    pub fn speech_tokens(&self) -> Vec<u32> {
        let generated = self.generated();
        let from = generated
            .iter()
            .position(|&t| t == START_SPEECH)
            .map_or(0, |p| p + 1);
        generated[from..]
            .iter()
            .copied()
            .take_while(|&t| t != STOP_SPEECH)
            .filter(|&t| t < SPEECH_CODES)
            .collect()
    }
}

/// The conditioning encoder: speaker projection, perceiver, emotion input
/// (Turbo has neither of the last two).
#[derive(Debug, Clone)]
struct CondEncoder {
    speaker: CandleLinear,
    perceiver: Option<Perceiver>,
    emotion: Option<CandleLinear>,
}

/// A loaded T3.
#[derive(Debug, Clone)]
pub struct T3 {
    config: T3Config,
    backbone: Backbone,
    cond: CondEncoder,
    text_emb: Embedding,
    speech_emb: Embedding,
    /// T3's own learned positions (not Turbo's: its backbone has them).
    text_pos: Option<Tensor>,
    speech_pos: Option<Tensor>,
    speech_head: Linear,
    device: Device,
}

impl T3 {
    /// Loads a T3 checkpoint on `device`; `precision` selects the decode
    /// kernel's weight storage on the CPU.
    pub fn load(path: &Path, device: &Device, precision: Precision) -> Result<Self> {
        let checkpoint = Checkpoint::open(path, None)?;
        let config = read_config(&checkpoint)?;
        let vb = checkpoint.var_builder(DType::F32, device);
        Self::build(config, precision, vb).map_err(|e| {
            Error::Unsupported(format!(
                "{} is not a Chatterbox T3 checkpoint of the expected sizes: {e}",
                path.display()
            ))
        })
    }

    /// A T3 of `config`'s sizes with random weights on `device`, for timing
    /// where the published file cannot be had ([`RandomWeights`]: speed
    /// depends on shapes, not values; what it says is noise).
    pub fn random(config: T3Config, device: &Device, precision: Precision) -> Result<Self> {
        let h = config.backbone.hidden;
        let vb = RandomWeights::new()
            .with_shape(
                "cond_enc.perceiver.pre_attention_query",
                &[1, PERCEIVER_QUERIES, h],
            )
            .var_builder(DType::F32, device);
        Ok(Self::build(config, precision, vb)?)
    }

    fn build(config: T3Config, precision: Precision, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = config.backbone.hidden;
        let table = |rows: usize, name: &str| vb.get((rows, h), name);
        let cond = vb.pp("cond_enc");
        let turbo = config.variant == T3Variant::Turbo;
        Ok(Self {
            backbone: Backbone::load(config.backbone.clone(), precision, vb.pp("tfmr"))?,
            cond: CondEncoder {
                speaker: candle_nn::linear(SPEAKER_EMBEDDING, h, cond.pp("spkr_enc"))?,
                perceiver: match turbo {
                    true => None,
                    false => Some(Perceiver::load(h, cond.pp("perceiver"))?),
                },
                emotion: match turbo {
                    true => None,
                    false => Some(candle_nn::linear_no_bias(1, h, cond.pp("emotion_adv_fc"))?),
                },
            },
            text_emb: Embedding::new(table(config.text_vocab, "text_emb.weight")?, h),
            speech_emb: Embedding::new(table(config.speech_vocab, "speech_emb.weight")?, h),
            text_pos: match turbo {
                true => None,
                false => Some(table(config.text_positions, "text_pos_emb.emb.weight")?),
            },
            speech_pos: match turbo {
                true => None,
                false => Some(table(config.speech_positions, "speech_pos_emb.emb.weight")?),
            },
            speech_head: Linear::load(
                h,
                config.speech_vocab,
                turbo,
                precision,
                vb.pp("speech_head"),
            )?,
            device: vb.device().clone(),
            config,
        })
    }

    /// Its sizes.
    pub fn config(&self) -> &T3Config {
        &self.config
    }

    /// The conditioning positions for `cond` (`[1, 1 + 32 + 1, width]`:
    /// speaker, perceiver output, emotion), computed once per voice and
    /// exaggeration.
    pub fn conditioning(&self, cond: &T3Conditioning) -> Result<Tensor> {
        let speaker = self
            .cond
            .speaker
            .forward(&cond.speaker_tensor(&self.device)?)?
            .unsqueeze(1)?;
        let mut parts = vec![speaker];
        if !cond.prompt_tokens.is_empty() {
            let n = cond.prompt_tokens.len();
            if n > self.config.speech_positions {
                return Err(Error::InvalidInput(format!(
                    "the voice's prompt has {n} speech tokens, this T3 takes at most {}",
                    self.config.speech_positions
                )));
            }
            self.check_ids(
                &cond.prompt_tokens,
                self.config.speech_vocab,
                "prompt speech",
            )?;
            let ids = Tensor::from_slice(&cond.prompt_tokens, (1, n), &self.device)?;
            let mut prompt = self.speech_emb.forward(&ids)?;
            if let Some(pos) = &self.speech_pos {
                prompt = prompt.broadcast_add(&pos.narrow(0, 0, n)?)?;
            }
            parts.push(match &self.cond.perceiver {
                Some(perceiver) => perceiver.forward(&prompt)?,
                None => prompt,
            });
        }
        if let Some(emotion_fc) = &self.cond.emotion {
            let emotion = Tensor::from_slice(&[cond.exaggeration], (1, 1, 1), &self.device)?;
            parts.push(emotion_fc.forward(&emotion)?);
        }
        Ok(Tensor::cat(&parts, 1)?)
    }

    /// Starts decoding `text` (token ids without start and stop) after
    /// `conditioning` (from [`T3::conditioning`]): runs the whole prompt
    /// through the backbone once and keeps its cache. `source` gives the
    /// sampler's draws.
    pub fn start(
        &self,
        conditioning: &Tensor,
        text: &[u32],
        params: &DecodeParams,
        source: Box<dyn UniformSource + Send>,
    ) -> Result<Generation> {
        Ok(self
            .begin(
                PromptStart::Whole(conditioning),
                text,
                params,
                source,
                false,
            )?
            .0)
    }

    /// [`T3::start`], also keeping the conditioning's part of the cache as
    /// the voice's [`T3Prefix`], for [`T3::start_after`] to continue with
    /// the voice's next sentences.
    pub fn start_keeping_prefix(
        &self,
        conditioning: &Tensor,
        text: &[u32],
        params: &DecodeParams,
        source: Box<dyn UniformSource + Send>,
    ) -> Result<(Generation, T3Prefix)> {
        let (generation, prefix) =
            self.begin(PromptStart::Whole(conditioning), text, params, source, true)?;
        let prefix = prefix.ok_or_else(|| Error::Unsupported("no prefix was kept".into()))?;
        Ok((generation, prefix))
    }

    /// [`T3::start`] after a voice's [`T3Prefix`]: only the text and the
    /// start of speech run through the backbone, continuing a copy of the
    /// prefix's cache (as a whole prompt would give them: attention is
    /// causal and positions absolute, so the prefix's keys and values do
    /// not depend on what follows).
    pub fn start_after(
        &self,
        prefix: &T3Prefix,
        text: &[u32],
        params: &DecodeParams,
        source: Box<dyn UniformSource + Send>,
    ) -> Result<Generation> {
        Ok(self
            .begin(PromptStart::After(prefix), text, params, source, false)?
            .0)
    }

    /// The prefill behind the three starts; `keep_prefix` copies the
    /// conditioning's positions out of a whole prompt's cache.
    fn begin(
        &self,
        from: PromptStart<'_>,
        text: &[u32],
        params: &DecodeParams,
        source: Box<dyn UniformSource + Send>,
        keep_prefix: bool,
    ) -> Result<(Generation, Option<T3Prefix>)> {
        let variant = self.config.variant;
        let sampler = params
            .sampler(variant)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let turbo = variant == T3Variant::Turbo;
        let mut ids = Vec::with_capacity(text.len() + 2);
        if !turbo {
            ids.push(START_TEXT);
        }
        ids.extend_from_slice(text);
        if !turbo {
            ids.push(STOP_TEXT);
        }
        if ids.is_empty() {
            return Err(Error::InvalidInput(
                "no text tokens: give some text to speak".into(),
            ));
        }
        let h = self.config.backbone.hidden;
        let c = match from {
            PromptStart::Whole(conditioning) => {
                let (one, c, width) = conditioning.dims3()?;
                if one != 1 || width != h {
                    return Err(Error::InvalidInput(format!(
                        "a T3 conditioning is [1, positions, {h}], got {:?}",
                        conditioning.dims()
                    )));
                }
                c
            }
            PromptStart::After(prefix) => prefix.positions,
        };
        let limit = match turbo {
            true => self.config.text_positions.saturating_sub(c + 2),
            false => self.config.text_positions,
        };
        if ids.len() > limit {
            return Err(Error::InvalidInput(format!(
                "the sentence is {} text tokens long, this T3 takes at most {}: split it",
                text.len(),
                limit.saturating_sub(if turbo { 0 } else { 2 })
            )));
        }
        self.check_ids(&ids, self.config.text_vocab, "text")?;
        // Turbo never guides: one row.
        let rows = if params.cfg_weight > 0.0 && !turbo {
            2
        } else {
            1
        };
        let t = ids.len();
        let ids = Tensor::from_slice(&ids, (1, t), &self.device)?;
        let text_cond = self.text_emb.forward(&ids)?;
        let text = match &self.text_pos {
            Some(table) => {
                let positions = table.narrow(0, 0, t)?.unsqueeze(0)?;
                let mut text_rows = vec![text_cond.broadcast_add(&positions)?];
                if rows == 2 {
                    // The unconditional row: no text, only its positions.
                    text_rows.push(positions.clone());
                }
                Tensor::cat(&text_rows, 0)?
            }
            None => text_cond,
        };
        let bos = self.speech_embedding(START_SPEECH, 0)?;
        let mut parts = match from {
            PromptStart::Whole(conditioning) => {
                vec![conditioning.broadcast_as((rows, c, h))?, text]
            }
            PromptStart::After(_) => vec![text],
        };
        // The reference puts BOS in twice, except Turbo.
        let bos_count = if turbo { 1 } else { 2 };
        for _ in 0..bos_count {
            parts.push(bos.broadcast_as((rows, 1, h))?);
        }
        let input = Tensor::cat(&parts, 1)?;
        let heads = &self.config.aligned_heads;
        let mut cache = match from {
            PromptStart::Whole(_) => self.backbone.new_probed_cache(heads)?,
            PromptStart::After(prefix) => self.backbone.expand_cache(&prefix.cache, rows, heads)?,
        };
        let analyzer = (!heads.is_empty()).then(|| AlignmentAnalyzer::new((c, c + t), STOP_SPEECH));
        let logits = self.logits(&input, &mut cache)?;
        let prompt_len = cache.len();
        let prefix = match keep_prefix {
            true => Some(T3Prefix {
                positions: c,
                cache: self.backbone.cache_prefix(&cache, c)?,
            }),
            false => None,
        };
        let room = match turbo {
            // The backbone's positions bound the whole sequence.
            true => self.config.speech_positions.saturating_sub(prompt_len),
            false => self.config.speech_positions.saturating_sub(2),
        };
        let max_tokens = params.max_tokens.min(room).max(1);
        let generation = Generation {
            cache,
            rows,
            logits,
            history: vec![START_SPEECH],
            sampler,
            cfg_weight: params.cfg_weight,
            max_tokens,
            finish: None,
            source,
            analyzer,
            penalize_generated_only: turbo,
        };
        Ok((generation, prefix))
    }

    /// Draws the next token of `generation` and, unless that ends it,
    /// feeds it back. `None` once it has ended.
    pub fn next_token(&self, generation: &mut Generation) -> Result<Option<u32>> {
        Ok(self.step(&mut [generation])?.pop().flatten())
    }

    /// One decode step for several sequences at once, each with its own
    /// cache: every sequence still going draws a token from its last logits
    /// (guidance, then its sampler), and those that go on are fed back
    /// together, reading each weight once. One token (or `None` for a
    /// sequence that had ended) per sequence. On error no sequence has
    /// moved.
    pub fn step(&self, batch: &mut [&mut Generation]) -> Result<Vec<Option<u32>>> {
        let v = self.config.speech_vocab;
        let mut drawn = Vec::with_capacity(batch.len());
        let mut analyses = Vec::with_capacity(batch.len());
        for g in batch.iter_mut() {
            if g.finish.is_some() {
                drawn.push(None);
                analyses.push(None);
                continue;
            }
            let mut logits: Vec<f32> = match g.rows {
                2 => {
                    let (cond, uncond) = g.logits.split_at(v);
                    let w = g.cfg_weight;
                    cond.iter()
                        .zip(uncond)
                        .map(|(&c, &u)| c + w * (c - u))
                        .collect()
                }
                _ => g.logits[..v].to_vec(),
            };
            // The analyzer steps on a copy, kept only if the step succeeds.
            let analyzed = g.analyzer.as_ref().map(|analyzer| {
                let mut analyzer = analyzer.clone();
                let probes = g.cache.probes();
                let weights: Vec<(&[f32], usize)> = probes
                    .iter()
                    .map(|p| (p.weights.as_slice(), p.queries))
                    .collect();
                let first_query = probes.first().map_or(0, |p| p.first_query);
                let last = g.history.last().copied().unwrap_or(START_SPEECH);
                analyzer.step(&weights, first_query, &mut logits, last);
                analyzer
            });
            let seen = match g.penalize_generated_only && g.history.len() > 1 {
                true => &g.history[1..],
                false => &g.history[..],
            };
            let token = g
                .sampler
                .sample(&mut logits, seen, g.source.as_mut())
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            drawn.push(Some(token));
            analyses.push(analyzed);
        }
        // Who goes on, and the input of each: its token at its position.
        let h = self.config.backbone.hidden;
        let mut inputs = Vec::new();
        let mut rows = Vec::new();
        for (g, token) in batch.iter().zip(&drawn) {
            let Some(token) = *token else { continue };
            let count = g.history.len();
            if token != STOP_SPEECH && count < g.max_tokens {
                inputs.push(
                    self.speech_embedding(token, count)?
                        .broadcast_as((g.rows, 1, h))?
                        .contiguous()?,
                );
                rows.push(g.rows);
            }
        }
        let logits = match inputs.is_empty() {
            true => Vec::new(),
            false => {
                let x = Tensor::cat(&inputs, 0)?;
                let mut caches: Vec<&mut BackboneCache> = batch
                    .iter_mut()
                    .zip(&drawn)
                    .filter(|(g, t)| {
                        t.is_some_and(|t| t != STOP_SPEECH && g.history.len() < g.max_tokens)
                    })
                    .map(|(g, _)| &mut g.cache)
                    .collect();
                let hidden = self.backbone.forward_step(&x, &mut caches, &rows)?;
                self.speech_head
                    .forward(&hidden)?
                    .flatten_all()?
                    .to_dtype(DType::F32)?
                    .to_vec1::<f32>()?
            }
        };
        // Nothing failed: every sequence takes its token.
        let mut offset = 0;
        for ((g, token), analyzed) in batch.iter_mut().zip(&drawn).zip(analyses) {
            let Some(token) = *token else { continue };
            if let Some(analyzer) = analyzed {
                g.analyzer = Some(analyzer);
            }
            g.history.push(token);
            let count = g.history.len() - 1;
            if token == STOP_SPEECH {
                g.finish = Some(Finish::Stop);
            } else if count >= g.max_tokens {
                g.finish = Some(Finish::MaxTokens);
            } else {
                let n = g.rows * v;
                g.logits = logits[offset..offset + n].to_vec();
                offset += n;
            }
        }
        Ok(drawn)
    }

    /// `[1, 1, width]`: speech token `token`'s embedding at speech position `position`.
    fn speech_embedding(&self, token: u32, position: usize) -> Result<Tensor> {
        let id = Tensor::from_slice(&[token], (1, 1), &self.device)?;
        let emb = self.speech_emb.forward(&id)?;
        Ok(match &self.speech_pos {
            Some(table) => emb.broadcast_add(&table.narrow(0, position, 1)?.unsqueeze(0)?)?,
            None => emb,
        })
    }

    /// The speech logits at the last position of `x` after the backbone.
    fn logits(&self, x: &Tensor, cache: &mut BackboneCache) -> Result<Vec<f32>> {
        let hidden = self.backbone.forward(x, cache)?;
        let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?.contiguous()?;
        let logits = self.speech_head.forward(&last)?;
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?)
    }

    fn check_ids(&self, ids: &[u32], vocab: usize, what: &str) -> Result<()> {
        match ids.iter().find(|&&t| t as usize >= vocab) {
            Some(t) => Err(Error::InvalidInput(format!(
                "{what} token {t} is outside this T3's {vocab}-token vocabulary"
            ))),
            None => Ok(()),
        }
    }
}

/// The sizes of the T3 in `checkpoint`, from its tensor shapes.
fn read_config(checkpoint: &Checkpoint) -> Result<T3Config> {
    let path = checkpoint.path();
    let wrong = |reason: String| Error::Unsupported(format!("{}: {reason}", path.display()));
    let shape = |name: &str| -> Result<Vec<usize>> {
        match checkpoint.dims(name) {
            Some(dims) => Ok(dims),
            None => Err(wrong(format!(
                "no tensor {name}: not a Chatterbox T3 checkpoint (t3_cfg.safetensors, t3_mtl23ls_v2.safetensors or t3_turbo_v1.safetensors)"
            ))),
        }
    };
    let matrix = |name: &str| -> Result<(usize, usize)> {
        match shape(name)?.as_slice() {
            &[rows, cols] => Ok((rows, cols)),
            other => Err(wrong(format!(
                "{name} has shape {other:?}, a matrix expected"
            ))),
        }
    };
    let (text_vocab, hidden) = matrix("text_emb.weight")?;
    let (speech_vocab, _) = matrix("speech_emb.weight")?;
    let turbo = checkpoint.contains("tfmr.h.0.attn.c_attn.weight");
    let (variant, architecture, intermediate, layers, text_positions, speech_positions);
    if turbo {
        // GPT-2: positions are the backbone's, for the whole sequence.
        let (positions, _) = matrix("tfmr.wpe.weight")?;
        (_, intermediate) = matrix("tfmr.h.0.mlp.c_fc.weight")?;
        layers = (0..)
            .take_while(|i| checkpoint.contains(&format!("tfmr.h.{i}.ln_1.weight")))
            .count();
        variant = T3Variant::Turbo;
        architecture = Architecture::Gpt2 { positions };
        (text_positions, speech_positions) = (positions, positions);
    } else {
        (text_positions, _) = matrix("text_pos_emb.emb.weight")?;
        (speech_positions, _) = matrix("speech_pos_emb.emb.weight")?;
        (intermediate, _) = matrix("tfmr.layers.0.mlp.gate_proj.weight")?;
        layers = (0..)
            .take_while(|i| checkpoint.contains(&format!("tfmr.layers.{i}.input_layernorm.weight")))
            .count();
        variant = match text_vocab {
            MULTILINGUAL_TEXT_VOCAB => T3Variant::Multilingual,
            _ => T3Variant::English,
        };
        architecture = Architecture::Llama {
            rope_theta: 500_000.0,
            rope_scaling: Some(LLAMA3_SCALING),
        };
    }
    if hidden % HEAD_DIM != 0
        || speech_vocab <= STOP_SPEECH as usize
        || text_vocab <= START_TEXT as usize
    {
        return Err(wrong(format!(
            "width {hidden}, {text_vocab} text and {speech_vocab} speech tokens: not a T3 (width a multiple of {HEAD_DIM}, more than {} speech and {} text tokens)",
            STOP_SPEECH, START_TEXT
        )));
    }
    Ok(T3Config::assemble(
        variant,
        architecture,
        [hidden, layers, intermediate],
        [text_vocab, speech_vocab],
        [text_positions, speech_positions],
    ))
}

impl T3Config {
    /// The published English T3 (`t3_cfg.safetensors`, chatterbox-tts
    /// 0.1.7's `T3Config.english_only()`): Llama-520M (30 layers of 1024,
    /// MLP 4096), 704 text and 8194 speech tokens, 2048 + 2 text and
    /// 4096 + 4 speech positions.
    pub fn english() -> Self {
        Self::assemble(
            T3Variant::English,
            Architecture::Llama {
                rope_theta: 500_000.0,
                rope_scaling: Some(LLAMA3_SCALING),
            },
            [1024, 30, 4096],
            [704, 8194],
            [2050, 4100],
        )
    }

    /// A config from its sizes: `[hidden, layers, intermediate]`, `[text,
    /// speech]` vocabularies and `[text, speech]` position rows.
    fn assemble(
        variant: T3Variant,
        architecture: Architecture,
        [hidden, layers, intermediate]: [usize; 3],
        [text_vocab, speech_vocab]: [usize; 2],
        [text_positions, speech_positions]: [usize; 2],
    ) -> Self {
        Self {
            variant,
            aligned_heads: match variant {
                T3Variant::Multilingual => aligned_heads(layers, hidden / HEAD_DIM),
                _ => Vec::new(),
            },
            backbone: BackboneConfig {
                hidden,
                layers,
                heads: hidden / HEAD_DIM,
                head_dim: HEAD_DIM,
                intermediate,
                norm_eps: 1e-5,
                architecture,
            },
            text_vocab,
            speech_vocab,
            text_positions,
            speech_positions,
        }
    }
}

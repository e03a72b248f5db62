//! The Chatterbox family: text in, speech out in a cloned voice. Each
//! sentence is normalized (`punc_norm`) and tokenized; T3 decodes its speech
//! tokens one per step; when it stops, S3Gen speaks them in the voice's
//! prompt, and the sentence's audio comes out.
//!
//! A checkpoint is a folder with the published file names (see
//! [`ChatterboxFamily::hub_files`]). The built-in voice is `conds.pt`; a
//! reference recording gives a cloned one ([`SpeakerRef::Recording`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use vivace_frontend::chatterbox_text::{
    punc_norm, punc_norm_multilingual, punc_norm_turbo, EnglishTokenizer, Gpt2Tokenizer,
    MultilingualTokenizer, LANGUAGES,
};
use vivace_frontend::loudness::normalize_loudness;
use vivace_frontend::resample::resample;
use vivace_frontend::sentences::split_sentences;
use vivace_models::chatterbox::s3gen::{FlowNoise, Prompt, S3Gen, SeededSourceNoise};
use vivace_models::chatterbox::t3::{
    DecodeParams, Finish, Generation, Precision, T3Conditioning, T3Prefix, T3Variant, T3,
};
use vivace_models::nn::sampling::{fresh_seed, SeededSource};
use vivace_perf::batch::ProbeError;

use super::reference::{
    ReferenceEncoder, ReferenceError, MAX_REFERENCE_SECONDS, MIN_SAMPLE_RATE, S3GEN_RATE,
    TOKENIZER_RATE,
};
use super::speaker::SpeakerEncoder;
use super::voice_conversion::{find_in, s3gen_config, BUILTIN_VOICE, S3GEN_FILES};
use crate::family::{
    Capabilities, Chunk, ClonedSpeaker, Family, LoadContext, Model, Sentence, SpeakerRef,
    StepError, Voice,
};
use crate::hub::HubFile;
use crate::synth::SynthError;
use crate::voice_store::{VoiceStore, PYKAKASI_ITAIJI, PYKAKASI_KANWA};
use vivace_frontend::kakasi::Kakasi;

/// The T3 checkpoints a folder may hold, in the order it is searched.
pub const T3_FILES: [&str; 3] = [
    "t3_cfg.safetensors",
    "t3_mtl23ls_v2.safetensors",
    "t3_turbo_v1.safetensors",
];
/// The English tokenizer.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The multilingual model's grapheme tokenizer.
pub const MULTILINGUAL_TOKENIZER_FILE: &str = "grapheme_mtl_merged_expanded_v1.json";
/// The voice encoder: `ve.safetensors` (English, Turbo) or `ve.pt`
/// (multilingual), the same weights.
pub const VOICE_ENCODER_FILES: [&str; 2] = ["ve.safetensors", "ve.pt"];
/// Seconds of the reference T3's prompt tokens come from (`ENC_COND_LEN`).
pub const T3_PROMPT_SECONDS: f64 = 6.0;
/// T3's prompt tokens at most (`speech_cond_prompt_len`).
pub const T3_PROMPT_TOKENS: usize = 150;
/// Turbo's: 15 s and 375 tokens.
pub const TURBO_PROMPT_SECONDS: f64 = 15.0;
/// Turbo's prompt tokens at most.
pub const TURBO_PROMPT_TOKENS: usize = 375;
/// Turbo refuses shorter references (`prepare_conditionals`).
pub const TURBO_MIN_REFERENCE_SECONDS: f64 = 5.0;
/// The loudness Turbo brings a reference to, in LUFS.
pub const TURBO_REFERENCE_LUFS: f64 = -27.0;
/// S3's silence token: Turbo appends three to every sentence (`S3GEN_SIL`).
pub const S3GEN_SILENCE: u32 = 4299;
/// Chatterbox's output rate.
pub const SAMPLE_RATE: u32 = 24_000;

/// Recognises and loads Chatterbox checkpoint folders.
pub struct ChatterboxFamily;

impl Family for ChatterboxFamily {
    fn name(&self) -> &'static str {
        "chatterbox"
    }

    fn expects(&self) -> &'static str {
        "a Chatterbox checkpoint folder (English, multilingual or Turbo: t3_*.safetensors, s3gen*, the tokenizer files, conds.pt)"
    }

    fn recognizes(&self, path: &Path) -> bool {
        path.is_dir() && T3_FILES.iter().any(|f| path.join(f).is_file())
    }

    fn load(&self, path: &Path, ctx: &LoadContext<'_>) -> Result<Arc<dyn Voice>, SynthError> {
        // bf16 (VIVACE_PRECISION=bf16) halves the bytes T3 reads per token;
        // its products and sums stay f32. S3Gen stays f32.
        let precision = match ctx.dtype {
            DType::BF16 => Precision::Bf16,
            _ => Precision::F32,
        };
        Ok(Arc::new(ChatterboxVoice::load(
            path, ctx.device, precision,
        )?))
    }

    /// The English model as `ResembleAI/chatterbox` publishes it.
    fn hub_files(&self) -> &'static [HubFile] {
        const FILES: &[HubFile] = &[
            HubFile {
                name: Cow::Borrowed("t3_cfg.safetensors"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("s3gen.safetensors"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("tokenizer.json"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("ve.safetensors"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("conds.pt"),
                required: false,
            },
        ];
        FILES
    }
}

/// A voice's conditioning for both halves.
#[derive(Debug, Clone)]
pub struct VoiceConditioning {
    /// T3's: speaker embedding, prompt tokens, exaggeration.
    pub t3: T3Conditioning,
    /// S3Gen's prompt.
    pub prompt: Prompt,
}

/// The knobs of a Chatterbox synthesis; JSON names are the request fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatterboxParams {
    /// Classifier-free guidance weight (0: off).
    pub cfg_weight: f32,
    /// Sampling temperature (0: greedy).
    pub temperature: f32,
    /// Repetition penalty (1: off).
    pub repetition_penalty: f32,
    /// Min-p cut (0: off).
    pub min_p: f32,
    /// Top-p cut (1: off).
    pub top_p: f32,
    /// Top-k cut (0: off; Turbo's default 1000).
    pub top_k: usize,
    /// Speech tokens per sentence at most (25 per second).
    pub max_tokens: usize,
    /// Emotion exaggeration (0.5 neutral).
    pub exaggeration: f32,
    /// Seed of every random draw (sampling, flow noise, vocoder phases);
    /// fresh when absent.
    pub seed: Option<u64>,
    /// The flow's starting noise from a `.npy` file `[80, frames]`
    /// instead of the seed's (parity runs).
    pub flow_noise: Option<PathBuf>,
    /// Whether the vocoder draws its sine phases and noise (off: zero).
    pub vocoder_noise: bool,
    /// Flow decoder steps (the checkpoint's default when absent).
    pub steps: Option<usize>,
    /// Appends each sentence's speech tokens to this file, one per line.
    pub speech_tokens_out: Option<PathBuf>,
    /// The language to speak (ISO 639-1): one of the 23 for the
    /// multilingual checkpoint (`en` when absent), `en` for the English one.
    pub language: Option<String>,
    /// The cloned voice (a reference recording's), or the built-in one.
    #[serde(skip)]
    pub voice: Option<Arc<VoiceConditioning>>,
}

/// One sentence being decoded.
pub struct ChatterboxSequence {
    generation: Generation,
    params: ChatterboxParams,
    voice: Arc<VoiceConditioning>,
}

/// The text front end of a checkpoint.
pub enum TextFrontEnd {
    /// `tokenizer.json`: English text, tokenized when split.
    English(Box<EnglishTokenizer>),
    /// `grapheme_mtl_merged_expanded_v1.json`: 23 languages, tokenized
    /// when a sentence starts, since the language is a request setting.
    Multilingual(Box<MultilingualTokenizer>),
    /// Turbo's GPT-2 tokenizer (English), tokenized when split.
    Turbo(Box<Gpt2Tokenizer>),
}

/// T3's prefixes by (voice address, exaggeration bits), each with the
/// voice it was computed for.
type ConditioningCache = HashMap<(usize, u32), (Arc<VoiceConditioning>, Arc<T3Prefix>)>;

/// Most bytes of T3 prefixes a voice keeps (a Turbo voice's is 74 MB, an
/// English or multilingual one's 8.4 MB).
pub const PREFIX_CACHE_BYTES: usize = 1 << 30;

/// A loaded Chatterbox voice.
pub struct ChatterboxVoice {
    t3: T3,
    s3gen: S3Gen,
    tokenizer: TextFrontEnd,
    reference: Option<ReferenceEncoder>,
    speaker: Option<SpeakerEncoder>,
    builtin: Option<Arc<VoiceConditioning>>,
    /// T3 prefixes per (voice, exaggeration): computed once. Each entry
    /// holds its voice, so the address in its key cannot be reused by
    /// another voice while the entry lives.
    conditioning: Mutex<ConditioningCache>,
    /// Held while pykakasi's dictionaries are fetched.
    japanese: Mutex<()>,
    capabilities: Capabilities,
}

impl ChatterboxVoice {
    /// Loads the checkpoint folder `dir` on `device`, T3's decode weights
    /// in `precision`.
    pub fn load(dir: &Path, device: &Device, precision: Precision) -> Result<Self, SynthError> {
        let find = |names: &[&str], what: &str| {
            find_in(dir, names, what, "; download the checkpoint with `vivace download chatterbox`, or place the published files there")
        };
        let t3_path = find(&T3_FILES, "T3 checkpoint")?;
        let s3gen_path = find(&S3GEN_FILES, "S3Gen checkpoint")?;
        let t3 = T3::load(&t3_path, device, precision)?;
        let tokenizer = match t3.config().variant {
            T3Variant::English => {
                let path = find(&[TOKENIZER_FILE], "English tokenizer")?;
                TextFrontEnd::English(Box::new(EnglishTokenizer::from_file(&path)?))
            }
            T3Variant::Multilingual => {
                let path = find(&[MULTILINGUAL_TOKENIZER_FILE], "multilingual tokenizer")?;
                TextFrontEnd::Multilingual(Box::new(MultilingualTokenizer::from_file(&path)?))
            }
            T3Variant::Turbo => TextFrontEnd::Turbo(Box::new(Gpt2Tokenizer::from_dir(dir)?)),
        };
        let s3gen_config = s3gen_config(dir)?;
        let s3gen = S3Gen::load(&s3gen_path, &s3gen_config, device, DType::F32)?;
        // Cloning needs the S3Gen file's tokenizer and CAMPPlus, and the
        // voice encoder; without them the built-in voice still speaks.
        let ve_path = VOICE_ENCODER_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file());
        let cloning = match ve_path {
            Some(ve_path) => match (
                ReferenceEncoder::load(&s3gen_path, &s3gen_config, device),
                SpeakerEncoder::load(&ve_path, device),
            ) {
                (Ok(reference), Ok(speaker)) => Some((reference, speaker)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("cannot clone voices with {}: {e}", dir.display());
                    None
                }
            },
            None => None,
        };
        let builtin = load_builtin(&dir.join(BUILTIN_VOICE))?;
        Self::from_parts(t3, s3gen, tokenizer, cloning, builtin)
    }

    /// From parts loaded elsewhere: `cloning` (S3Gen's reference front end
    /// and the voice encoder) makes cloning from a recording possible,
    /// `builtin` is the voice without one.
    pub fn from_parts(
        t3: T3,
        s3gen: S3Gen,
        tokenizer: TextFrontEnd,
        cloning: Option<(ReferenceEncoder, SpeakerEncoder)>,
        builtin: Option<VoiceConditioning>,
    ) -> Result<Self, SynthError> {
        let clones = cloning.is_some();
        let (reference, speaker) = cloning.unzip();
        let languages = match &tokenizer {
            TextFrontEnd::English(_) | TextFrontEnd::Turbo(_) => vec!["en".to_string()],
            TextFrontEnd::Multilingual(_) => {
                LANGUAGES.iter().map(|(code, _)| code.to_string()).collect()
            }
        };
        Ok(Self {
            t3,
            s3gen,
            tokenizer,
            capabilities: Capabilities {
                family: "chatterbox",
                sample_rate: SAMPLE_RATE,
                speakers: 1,
                speaker_names: Vec::new(),
                languages,
                clones,
                streams: false,
            },
            reference,
            speaker,
            builtin: builtin.map(Arc::new),
            conditioning: Mutex::new(HashMap::new()),
            japanese: Mutex::new(()),
        })
    }

    /// Starts T3 on `ids` in `voice`: after the voice's prefix when it is
    /// cached (only the text runs), else on the whole prompt, keeping the
    /// prefix for the voice's next sentences. The cache holds at most
    /// [`PREFIX_CACHE_BYTES`]; past it, it starts over.
    fn start_t3(
        &self,
        voice: &Arc<VoiceConditioning>,
        exaggeration: f32,
        ids: &[u32],
        params: &DecodeParams,
        seed: u64,
    ) -> Result<Generation, SynthError> {
        let key = (Arc::as_ptr(voice) as usize, exaggeration.to_bits());
        let source = Box::new(SeededSource::new(seed));
        let cached = self.cache().get(&key).map(|(_, p)| Arc::clone(p));
        if let Some(prefix) = cached {
            return Ok(self.t3.start_after(&prefix, ids, params, source)?);
        }
        let cond = T3Conditioning {
            exaggeration,
            ..voice.t3.clone()
        };
        let conditioning = self.t3.conditioning(&cond)?;
        let (generation, prefix) =
            self.t3
                .start_keeping_prefix(&conditioning, ids, params, source)?;
        let mut cache = self.cache();
        let held: usize = cache.values().map(|(_, p)| p.bytes()).sum();
        if held + prefix.bytes() > PREFIX_CACHE_BYTES {
            cache.clear(); // voices come and go in a server: bound it
        }
        cache.insert(key, (Arc::clone(voice), Arc::new(prefix)));
        Ok(generation)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ConditioningCache> {
        self.conditioning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The audio of a finished sequence: its tokens through S3Gen.
    fn speak(&self, seq: &ChatterboxSequence) -> Result<Vec<f32>, SynthError> {
        let tokens = seq.generation.speech_tokens();
        if seq.generation.finish() == Some(Finish::MaxTokens) {
            tracing::warn!(
                tokens = tokens.len(),
                "no stop token within the maximum speech tokens: the sentence is cut there (raise max_tokens, or split the text)"
            );
        }
        if let Some(path) = &seq.params.speech_tokens_out {
            append_tokens(path, &tokens)?;
        }
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut tokens = tokens;
        if self.t3.config().variant == T3Variant::Turbo {
            // `tts_turbo.py` ends every sentence on three silence tokens.
            tokens.extend([S3GEN_SILENCE; 3]);
        }
        let prompt = &seq.voice.prompt;
        let frames = 2 * (prompt.tokens.len() + tokens.len());
        let seed = seq.params.seed.unwrap_or(0);
        let flow = match &seq.params.flow_noise {
            Some(path) => FlowNoise::from_npy(path)?,
            None => FlowNoise::Seeded(seed),
        };
        let noise = flow.for_frames(frames)?;
        let steps = seq.params.steps.unwrap_or(self.s3gen.default_steps());
        let mel = self
            .s3gen
            .flow(prompt, &tokens, &noise, steps, &mut |_, _| {})?;
        let mut source = seq
            .params
            .vocoder_noise
            .then(|| SeededSourceNoise::new(seed));
        let source = source
            .as_mut()
            .map(|n| n as &mut dyn vivace_models::chatterbox::s3gen::SourceNoise);
        Ok(self.s3gen.vocode(&mel, source)?.to_vec1()?)
    }

    /// Gives `tokenizer` pykakasi's dictionaries, fetched from PyPI into
    /// the store on first use (one fetch at a time).
    fn load_japanese(&self, tokenizer: &MultilingualTokenizer) -> Result<(), SynthError> {
        let _one_at_a_time = self
            .japanese
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tokenizer.has_japanese() {
            return Ok(());
        }
        let store = VoiceStore::from_env()?;
        let kanwa = store.ensure_weights(&PYKAKASI_KANWA)?;
        let itaiji = store.ensure_weights(&PYKAKASI_ITAIJI)?;
        tokenizer.set_japanese(Kakasi::from_files(&kanwa, &itaiji)?);
        Ok(())
    }

    fn decode_params(&self, p: &ChatterboxParams) -> DecodeParams {
        DecodeParams {
            cfg_weight: p.cfg_weight,
            temperature: p.temperature,
            repetition_penalty: p.repetition_penalty,
            min_p: p.min_p,
            top_p: p.top_p,
            top_k: p.top_k,
            max_tokens: p.max_tokens,
        }
    }
}

/// The built-in voice of `conds.pt`, if the folder has one.
fn load_builtin(path: &Path) -> Result<Option<VoiceConditioning>, SynthError> {
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(VoiceConditioning {
        t3: T3Conditioning::from_conds(path)?,
        prompt: Prompt::from_conds(path)?,
    }))
}

/// Appends `tokens` to `path`, one per line.
fn append_tokens(path: &Path, tokens: &[u32]) -> Result<(), SynthError> {
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let text: String = tokens.iter().map(|t| format!("{t}\n")).collect();
        file.write_all(text.as_bytes())
    };
    write().map_err(|e| {
        vivace_frontend::Error::Write {
            path: path.to_path_buf(),
            source: e,
        }
        .into()
    })
}

impl Model for ChatterboxVoice {
    type Params = ChatterboxParams;
    type State = ChatterboxSequence;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn default_params(&self) -> ChatterboxParams {
        let d = DecodeParams::defaults(self.t3.config().variant);
        ChatterboxParams {
            cfg_weight: d.cfg_weight,
            temperature: d.temperature,
            repetition_penalty: d.repetition_penalty,
            min_p: d.min_p,
            top_p: d.top_p,
            top_k: d.top_k,
            max_tokens: d.max_tokens,
            // Turbo has no emotion input (the reference's default is 0).
            exaggeration: match self.t3.config().variant {
                T3Variant::Turbo => 0.0,
                _ => self.builtin.as_ref().map_or(0.5, |b| b.t3.exaggeration),
            },
            seed: None,
            flow_noise: None,
            vocoder_noise: true,
            steps: None,
            speech_tokens_out: None,
            language: None,
            voice: None,
        }
    }

    /// Chatterbox has no speed control: OpenAI's `speed` is ignored.
    fn set_speed(&self, _params: &mut ChatterboxParams, speed: f64) {
        if speed != 1.0 {
            tracing::warn!(speed, "Chatterbox has no speed control: `speed` is ignored");
        }
    }

    fn set_speaker(
        &self,
        params: &mut ChatterboxParams,
        speaker: &SpeakerRef,
    ) -> Result<(), SynthError> {
        match speaker {
            SpeakerRef::Recording {
                samples,
                sample_rate,
            } => {
                let voice = self.clone_voice(samples, *sample_rate, params.exaggeration)?;
                params.voice = Some(Arc::new(voice));
                Ok(())
            }
            SpeakerRef::Cloned(cloned) => {
                let voice = cloned.get::<VoiceConditioning>().ok_or(SynthError::Mismatch(
                    "a voice cloned by another model family",
                ))?;
                params.voice = Some(voice);
                Ok(())
            }
            SpeakerRef::Given(_) | SpeakerRef::Embedding(_) => Err(SynthError::InvalidParams(
                "a Chatterbox voice speaks as its built-in voice or clones a reference recording; it has no named speakers or bare embeddings".into(),
            )),
        }
    }

    fn set_seed(&self, params: &mut ChatterboxParams, seed: u64) {
        params.seed = Some(seed);
    }

    /// Both halves' conditioning, computed once; the exaggeration is a
    /// request setting applied later, so the voice's default is stored.
    fn clone_speaker(
        &self,
        samples: &[f32],
        sample_rate: u32,
    ) -> Result<ClonedSpeaker, SynthError> {
        let exaggeration = Model::default_params(self).exaggeration;
        let voice = self.clone_voice(samples, sample_rate, exaggeration)?;
        Ok(ClonedSpeaker::new(Arc::new(voice)))
    }

    /// English sentences are tokenized here; multilingual ones carry their
    /// normalized characters and are tokenized in [`Model::start`], where
    /// the request's language is known.
    fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        let mut out = Vec::new();
        for part in split_sentences(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match &self.tokenizer {
                TextFrontEnd::English(tokenizer) => {
                    let ids = tokenizer.encode(&punc_norm(part))?;
                    if ids.is_empty() {
                        continue;
                    }
                    out.push(Sentence {
                        phonemes: ids.iter().map(|&i| tokenizer.token(i)).collect(),
                        ids: ids.into_iter().map(i64::from).collect(),
                        pause_after: None,
                    });
                }
                TextFrontEnd::Turbo(tokenizer) => {
                    let ids = tokenizer.encode(&punc_norm_turbo(part))?;
                    if ids.is_empty() {
                        continue;
                    }
                    out.push(Sentence {
                        phonemes: ids.iter().map(|&i| tokenizer.token(i)).collect(),
                        ids: ids.into_iter().map(i64::from).collect(),
                        pause_after: None,
                    });
                }
                TextFrontEnd::Multilingual(_) => out.push(Sentence {
                    phonemes: punc_norm_multilingual(part)
                        .chars()
                        .map(String::from)
                        .collect(),
                    ids: Vec::new(),
                    pause_after: None,
                }),
            }
        }
        if out.is_empty() {
            return Err(vivace_frontend::Error::Untokenizable(format!(
                "{text:?} has nothing Chatterbox's tokenizer can read: give some words to speak"
            ))
            .into());
        }
        Ok(out)
    }

    fn start(
        &self,
        sentence: &Sentence,
        params: &ChatterboxParams,
    ) -> Result<ChatterboxSequence, SynthError> {
        let ids: Vec<u32> = match &self.tokenizer {
            TextFrontEnd::English(_) | TextFrontEnd::Turbo(_) => {
                if self.t3.config().variant == T3Variant::Turbo
                    && (params.cfg_weight > 0.0 || params.min_p > 0.0 || params.exaggeration > 0.0)
                {
                    tracing::warn!("Chatterbox Turbo has no guidance, min-p or exaggeration: cfg_weight, min_p and exaggeration are ignored");
                }
                if let Some(language) = params.language.as_deref() {
                    if !language.eq_ignore_ascii_case("en") {
                        return Err(SynthError::InvalidParams(format!(
                            "language {language:?}: this Chatterbox checkpoint speaks English only (en); for other languages use the 23-language checkpoint (`vivace download chatterbox-multilingual`)"
                        )));
                    }
                }
                sentence
                    .ids
                    .iter()
                    .map(|&i| u32::try_from(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| SynthError::Mismatch("a negative token id"))?
            }
            TextFrontEnd::Multilingual(tokenizer) => {
                let language = params.language.as_deref().unwrap_or("en");
                if language.eq_ignore_ascii_case("ja") {
                    self.load_japanese(tokenizer)?;
                }
                let text = sentence.phonemes.concat();
                let ids = tokenizer.encode(&text, language)?;
                if ids.len() <= 1 {
                    return Err(vivace_frontend::Error::Untokenizable(format!(
                        "{text:?} has nothing Chatterbox's {language} tokenizer can read"
                    ))
                    .into());
                }
                ids
            }
        };
        let voice = params.voice.clone().or_else(|| self.builtin.clone()).ok_or_else(|| {
            SynthError::InvalidParams(
                "this Chatterbox folder has no built-in voice (conds.pt): give a reference recording to clone".into(),
            )
        })?;
        let mut params = params.clone();
        let seed = params.seed.unwrap_or_else(fresh_seed);
        params.seed = Some(seed);
        let generation = self.start_t3(
            &voice,
            params.exaggeration,
            &ids,
            &self.decode_params(&params),
            seed,
        )?;
        Ok(ChatterboxSequence {
            generation,
            params,
            voice,
        })
    }

    /// One token for every sentence of the batch, decoded together (each
    /// weight read once for all); a sentence that ends runs S3Gen and
    /// returns its audio.
    fn step(&self, batch: &mut [&mut ChatterboxSequence]) -> Result<Vec<Chunk>, StepError> {
        let fail = |e: SynthError| ProbeError::Failed(e);
        {
            let mut generations: Vec<&mut Generation> =
                batch.iter_mut().map(|s| &mut s.generation).collect();
            self.t3.step(&mut generations).map_err(|e| fail(e.into()))?;
        }
        let mut chunks = Vec::with_capacity(batch.len());
        for seq in batch.iter() {
            chunks.push(match seq.generation.finish() {
                None => Chunk {
                    audio: Vec::new(),
                    done: false,
                },
                Some(_) => Chunk {
                    audio: self.speak(seq).map_err(fail)?,
                    done: true,
                },
            });
        }
        Ok(chunks)
    }

    fn smoke_test(&self) -> Result<(), SynthError> {
        // One prefill and one token: proves T3 runs on its device.
        let Some(voice) = self.builtin.clone() else {
            return Ok(());
        };
        let params = DecodeParams {
            max_tokens: 1,
            ..DecodeParams::defaults(self.t3.config().variant)
        };
        let exaggeration = Model::default_params(self).exaggeration;
        let mut g = self.start_t3(&voice, exaggeration, &[14], &params, 0)?;
        self.t3.next_token(&mut g)?;
        Ok(())
    }
}

impl ChatterboxVoice {
    /// Both halves' conditioning from a reference recording, as
    /// `prepare_conditionals` makes it: S3Gen's prompt from the first 10 s
    /// at 24 kHz, T3's prompt tokens from the first 6 s at 16 kHz (at most
    /// 150), the speaker embedding from the whole 16 kHz recording. Turbo
    /// wants more than 5 s, brings it to −27 LUFS first, and takes its 375
    /// prompt tokens from the first 15 s.
    fn clone_voice(
        &self,
        samples: &[f32],
        sample_rate: u32,
        exaggeration: f32,
    ) -> Result<VoiceConditioning, SynthError> {
        let (Some(reference), Some(speaker)) = (&self.reference, &self.speaker) else {
            return Err(SynthError::InvalidParams(
                "this Chatterbox folder cannot clone: it needs ve.safetensors (the voice encoder) and an S3Gen checkpoint with its speech tokenizer and speaker encoder".into(),
            ));
        };
        let what = Path::new("the reference recording");
        if sample_rate < MIN_SAMPLE_RATE {
            return Err(ReferenceError::SampleRate {
                path: what.to_path_buf(),
                rate: sample_rate,
            }
            .into());
        }
        let mut wav24 = resample(samples, sample_rate, S3GEN_RATE)?;
        let turbo = self.t3.config().variant == T3Variant::Turbo;
        let (prompt_seconds, prompt_limit) = match turbo {
            true => (TURBO_PROMPT_SECONDS, TURBO_PROMPT_TOKENS),
            false => (T3_PROMPT_SECONDS, T3_PROMPT_TOKENS),
        };
        if turbo {
            let seconds = wav24.len() as f64 / f64::from(S3GEN_RATE);
            if seconds <= TURBO_MIN_REFERENCE_SECONDS {
                return Err(ReferenceError::TooShortForTurbo {
                    path: what.to_path_buf(),
                    seconds,
                    min: TURBO_MIN_REFERENCE_SECONDS,
                }
                .into());
            }
            wav24 = normalize_loudness(&wav24, S3GEN_RATE, TURBO_REFERENCE_LUFS);
        }
        let wav16 = resample(&wav24, S3GEN_RATE, TOKENIZER_RATE)?;
        let seconds = |s: f64, rate: u32| (s * f64::from(rate)) as usize;
        let s3gen_part = &wav24[..wav24.len().min(seconds(MAX_REFERENCE_SECONDS, S3GEN_RATE))];
        let prompt = reference.prompt(s3gen_part, what)?;
        let t3_part = &wav16[..wav16.len().min(seconds(prompt_seconds, TOKENIZER_RATE))];
        let mut prompt_tokens = reference.tokens(t3_part)?;
        prompt_tokens.truncate(prompt_limit);
        Ok(VoiceConditioning {
            t3: T3Conditioning {
                speaker: speaker.embed(&wav16, what)?,
                prompt_tokens,
                exaggeration,
            },
            prompt,
        })
    }
}

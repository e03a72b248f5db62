//! The model-family seam: what a kind of model implements so that the
//! runtime, the CLI, the server, the benchmarks and `validate` can drive it
//! without knowing what it is.
//!
//! A family implements two traits in its own folder:
//! - [`Family`] recognises a checkpoint on disk and loads it;
//! - [`Model`] is the loaded voice: what it can do ([`Capabilities`]), its
//!   text front end, its typed parameters, and its step loop: [`Model::start`]
//!   turns one sentence into per-sequence state and [`Model::step`] advances
//!   a batch of sequences by one step, each producing an audio [`Chunk`]
//!   until its last.
//!
//! VITS does a whole sentence in one step. An autoregressive model does a
//! token per step and emits a chunk every few tokens. The runtime
//! ([`crate::runtime`]) sees every family through [`Voice`], the type-erased
//! face that every [`Model`] gets for free; parameters become JSON only at
//! the edges ([`Request`]).

pub mod chatterbox;
pub mod cloning;
pub mod kokoro;
pub mod vits;

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};
use serde::de::DeserializeOwned;
use serde::Serialize;
use vivace_perf::batch::ProbeError;

use crate::hub::HubFile;
use crate::synth::SynthError;

/// What a loaded voice can do, for listings, the API and the runtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    /// The family's name (`vits`, ...).
    pub family: &'static str,
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// Number of built-in speakers (1: single-speaker).
    pub speakers: usize,
    /// Names of the built-in speakers, where the voice has them.
    pub speaker_names: Vec<String>,
    /// Languages it speaks (BCP 47 or espeak-ng voice names), where known.
    pub languages: Vec<String>,
    /// Whether it can speak in the voice of a reference recording.
    pub clones: bool,
    /// Whether it emits audio before a sentence is finished.
    pub streams: bool,
}

/// One sentence of input ready for the model: the runtime's unit of work.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// The front end's units, one string each (phonemes for Piper,
    /// characters for MMS, tokens for others): what `--json` reports show.
    pub phonemes: Vec<String>,
    /// The model's input ids.
    pub ids: Vec<i64>,
    /// Seconds of silence after this sentence when its front end decides
    /// them (Kokoro's pauses after a batch); `None`: the request's sentence
    /// silence.
    pub pause_after: Option<f32>,
}

/// Who should speak: how the edges name a speaker, before the family turns
/// it into its own conditioning.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakerRef {
    /// A built-in speaker by name or index.
    Given(String),
    /// A speaker embedding (for example from `vivace embed`).
    Embedding(Vec<f32>),
    /// A reference recording, mono `[-1, 1]`, to clone the voice of.
    Recording {
        /// The samples.
        samples: Vec<f32>,
        /// Their rate in Hz.
        sample_rate: u32,
    },
    /// A voice already cloned by [`Voice::clone_speaker`] of the same voice:
    /// the conditioning is computed once and reused by every request.
    Cloned(ClonedSpeaker),
}

/// A speaker cloned from a recording, in the form its voice conditions on
/// (Chatterbox: T3's and S3Gen's prompts): opaque to the edges, cheap to
/// clone, usable only with the voice that made it.
#[derive(Clone)]
pub struct ClonedSpeaker(Arc<dyn Any + Send + Sync>);

impl ClonedSpeaker {
    /// Wraps a family's conditioning.
    pub fn new<T: Any + Send + Sync>(conditioning: Arc<T>) -> Self {
        Self(conditioning)
    }

    /// The family's conditioning, if this speaker was cloned by that family.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.0).downcast::<T>().ok()
    }
}

impl std::fmt::Debug for ClonedSpeaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClonedSpeaker")
    }
}

impl PartialEq for ClonedSpeaker {
    /// The same speaker: the same conditioning, not equal values.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A request's settings as the edges give them (CLI flags, HTTP fields),
/// before the family turns them into its typed parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Fields of the family's parameters to override, by their JSON name
    /// (`length_scale`, ...); an unknown name is refused.
    pub overrides: serde_json::Map<String, serde_json::Value>,
    /// OpenAI's speaking rate (1 normal, 2 twice as fast).
    pub speed: Option<f64>,
    /// The speaker; the voice's default when absent.
    pub speaker: Option<SpeakerRef>,
    /// Seed of the voice's randomness (noise, sampling): the same seed, the
    /// same audio; fresh randomness when absent.
    pub seed: Option<u64>,
}

/// One step's audio for one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Samples at the voice's rate, `[-1, 1]` before post-processing.
    pub audio: Vec<f32>,
    /// Whether this is the sequence's last chunk.
    pub done: bool,
}

/// Why a step failed: out of memory (the runtime retries with a smaller
/// batch) or anything else.
pub type StepError = ProbeError<SynthError>;

/// A loaded voice of one family, with its typed parameters and per-sequence
/// state: what a family implements.
pub trait Model: Send + Sync + 'static {
    /// The knobs of a synthesis (noise, speed, speaker, sampling, ...);
    /// their JSON field names are what [`Request::overrides`] names.
    type Params: Clone + Send + Sync + Serialize + DeserializeOwned + 'static;
    /// One sequence in flight (for an autoregressive model: its tokens and
    /// cache).
    type State: Send + 'static;

    /// What the voice can do.
    fn capabilities(&self) -> &Capabilities;
    /// The voice's own defaults (its config file's).
    fn default_params(&self) -> Self::Params;
    /// Applies OpenAI's `speed` (1 normal, 2 twice as fast).
    fn set_speed(&self, params: &mut Self::Params, speed: f64);
    /// Conditions on `speaker`, or says why this voice cannot.
    fn set_speaker(
        &self,
        params: &mut Self::Params,
        speaker: &SpeakerRef,
    ) -> Result<(), SynthError>;
    /// Seeds the voice's randomness (noise, sampling). A family without
    /// any ignores it.
    fn set_seed(&self, params: &mut Self::Params, seed: u64) {
        let _ = (params, seed);
    }
    /// Clones the voice of a recording (mono `[-1, 1]` at `sample_rate`)
    /// once, for [`SpeakerRef::Cloned`]; a family that cannot clone says so.
    fn clone_speaker(
        &self,
        samples: &[f32],
        sample_rate: u32,
    ) -> Result<ClonedSpeaker, SynthError> {
        let _ = (samples, sample_rate);
        Err(SynthError::CannotClone)
    }
    /// Splits `text` into sentences of model input (the text front end).
    fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError>;
    /// Starts one sequence.
    fn start(&self, sentence: &Sentence, params: &Self::Params) -> Result<Self::State, SynthError>;
    /// Advances every sequence of `batch` by one step; one chunk per
    /// sequence, in order. On error the states must be as they were, so the
    /// runtime can retry them in smaller batches.
    fn step(&self, batch: &mut [&mut Self::State]) -> Result<Vec<Chunk>, StepError>;
    /// Runs the model once on a tiny input, to prove it works on its device.
    fn smoke_test(&self) -> Result<(), SynthError>;
}

/// A family's parameters for one request, type-erased (made by [`Voice::params`]).
#[derive(Clone)]
pub struct Params(Arc<dyn Any + Send + Sync>);

/// One sequence in flight, type-erased (made by [`Voice::start`]).
pub struct Sequence(Box<dyn Any + Send>);

/// The face of every [`Model`] that the runtime, CLI and server use.
pub trait Voice: Send + Sync {
    /// What the voice can do.
    fn capabilities(&self) -> &Capabilities;
    /// The voice's defaults with `request` applied: overrides, speed, speaker.
    fn params(&self, request: &Request) -> Result<Params, SynthError>;
    /// `params` as JSON, for reports.
    fn params_json(&self, params: &Params) -> serde_json::Value;
    /// Clones the voice of a recording once (see [`Model::clone_speaker`]).
    fn clone_speaker(&self, samples: &[f32], sample_rate: u32)
        -> Result<ClonedSpeaker, SynthError>;
    /// Splits `text` into sentences of model input.
    fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError>;
    /// Starts one sequence with `params` (from this voice's [`Voice::params`]).
    fn start(&self, sentence: &Sentence, params: &Params) -> Result<Sequence, SynthError>;
    /// Advances `batch` (sequences this voice started) by one step.
    fn step(&self, batch: &mut [&mut Sequence]) -> Result<Vec<Chunk>, StepError>;
    /// Runs the model once on a tiny input.
    fn smoke_test(&self) -> Result<(), SynthError>;
    /// The concrete voice, for tools that only apply to one family (the
    /// VITS stage benchmark, the compact converter).
    fn as_any(&self) -> &dyn Any;
}

impl<M: Model> Voice for M {
    fn capabilities(&self) -> &Capabilities {
        Model::capabilities(self)
    }

    fn params(&self, request: &Request) -> Result<Params, SynthError> {
        let mut params = self.default_params();
        if !request.overrides.is_empty() {
            let mut json = serde_json::to_value(&params).map_err(params_error)?;
            if let serde_json::Value::Object(fields) = &mut json {
                fields.extend(request.overrides.clone());
            }
            params = serde_json::from_value(json).map_err(params_error)?;
        }
        if let Some(speed) = request.speed {
            self.set_speed(&mut params, speed);
        }
        if let Some(speaker) = &request.speaker {
            self.set_speaker(&mut params, speaker)?;
        }
        if let Some(seed) = request.seed {
            self.set_seed(&mut params, seed);
        }
        Ok(Params(Arc::new(params)))
    }

    fn params_json(&self, params: &Params) -> serde_json::Value {
        params
            .0
            .downcast_ref::<M::Params>()
            .and_then(|p| serde_json::to_value(p).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    fn clone_speaker(
        &self,
        samples: &[f32],
        sample_rate: u32,
    ) -> Result<ClonedSpeaker, SynthError> {
        Model::clone_speaker(self, samples, sample_rate)
    }

    fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        Model::sentences(self, text)
    }

    fn start(&self, sentence: &Sentence, params: &Params) -> Result<Sequence, SynthError> {
        let params = params
            .0
            .downcast_ref::<M::Params>()
            .ok_or(SynthError::Mismatch("parameters made by another voice"))?;
        Ok(Sequence(Box::new(Model::start(self, sentence, params)?)))
    }

    fn step(&self, batch: &mut [&mut Sequence]) -> Result<Vec<Chunk>, StepError> {
        let mut states = Vec::with_capacity(batch.len());
        for sequence in batch.iter_mut() {
            match sequence.0.downcast_mut::<M::State>() {
                Some(state) => states.push(state),
                None => {
                    return Err(ProbeError::Failed(SynthError::Mismatch(
                        "a sequence started by another voice",
                    )))
                }
            }
        }
        Model::step(self, &mut states)
    }

    fn smoke_test(&self) -> Result<(), SynthError> {
        Model::smoke_test(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A request's parameters that do not fit the family's: names the field.
fn params_error(e: serde_json::Error) -> SynthError {
    SynthError::InvalidParams(e.to_string())
}

/// Where a family loads a voice: the device, the dtype, and the shared data
/// its front end needs.
#[derive(Debug, Clone, Copy)]
pub struct LoadContext<'a> {
    /// The device to run on.
    pub device: &'a Device,
    /// The dtype of the parts that compute in reduced precision.
    pub dtype: DType,
    /// espeak-ng's data directory (written on first use).
    pub espeak_data: &'a Path,
    /// The espeak-ng voice a Piper voice phonemizes with instead of its
    /// own `espeak.voice` (`vivace say --language`); other families ignore it.
    pub espeak_voice: Option<&'a str>,
    /// The tone-colour converter a VITS voice clones recordings with;
    /// other families ignore it.
    pub tone_color: Option<&'a Arc<crate::tone_color::ToneColor>>,
    /// Run a VITS decoder's upsamplers and residual blocks on int8 weights
    /// and activations (`--precision int8` on the CPU); other families
    /// ignore it.
    pub int8_decoder: bool,
}

/// A kind of model: recognises its checkpoints and loads them.
pub trait Family: Sync {
    /// Its name, as [`Capabilities::family`] reports it.
    fn name(&self) -> &'static str;
    /// What its checkpoints look like, for the error when none is recognised.
    fn expects(&self) -> &'static str;
    /// Whether `path` looks like one of its checkpoints (cheap: file names only).
    fn recognizes(&self, path: &Path) -> bool;
    /// Loads the checkpoint at `path`.
    fn load(&self, path: &Path, ctx: &LoadContext<'_>) -> Result<Arc<dyn Voice>, SynthError>;
    /// The files of a checkpoint as its publisher lays it out on the
    /// Hugging Face Hub (what `vivace download hf:…` fetches).
    fn hub_files(&self) -> &'static [HubFile];
}

/// The family called `name`, or an error listing the known ones.
pub fn by_name(name: &str) -> Result<&'static dyn Family, String> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = FAMILIES.iter().map(|f| f.name()).collect();
            format!("no model family {name:?}: use one of {}", known.join(", "))
        })
}

/// Every family Vivace knows, tried in order.
pub static FAMILIES: &[&dyn Family] = &[
    &chatterbox::tts::ChatterboxFamily,
    &kokoro::KokoroFamily,
    &vits::VitsFamily,
];

/// Loads the voice at `path` with the first family that recognises it.
pub fn load(path: &Path, ctx: &LoadContext<'_>) -> Result<Arc<dyn Voice>, SynthError> {
    match FAMILIES.iter().find(|f| f.recognizes(path)) {
        Some(family) => family.load(path, ctx),
        None => Err(SynthError::UnknownFormat {
            path: path.to_path_buf(),
            expected: FAMILIES
                .iter()
                .map(|f| format!("{} ({})", f.expects(), f.name()))
                .collect::<Vec<_>>()
                .join("; or "),
        }),
    }
}

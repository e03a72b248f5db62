//! Text in, audio out: the pipeline behind `vivace say`.
//!
//! Mirrors what Piper 1.8's CLI does for one input: phonemize with espeak-ng
//! into sentences, map phonemes to ids, synthesize each sentence, post-process
//! it (normalize, volume, clip) and write it, with the configured silence
//! between sentences. Sentences go to the sink as soon as each is ready.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use vivace_frontend::audio::{AudioSink, PostProcess};
use vivace_perf::batch::{find_batch, BatchChoice, ProbeError};
use vivace_perf::{DeviceKind, Optimizer};

use crate::family::vits::VitsVoice;
use crate::family::{self, LoadContext, Params, Request, Voice};
use crate::metrics::Metrics;
use crate::runtime::{self, Delivery, Runtime, RuntimeConfig};

/// What can go wrong between text and audio.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The text has nothing to say.
    #[error("the input text is empty or only whitespace: give some text to speak")]
    EmptyText,
    /// Loading the voice failed.
    #[error(transparent)]
    Model(#[from] vivace_models::Error),
    /// Phonemization or output failed.
    #[error(transparent)]
    Frontend(#[from] vivace_frontend::Error),
    /// Data fetched on first use (pykakasi's dictionaries) could not be had.
    #[error(transparent)]
    Store(Box<crate::voice_store::StoreError>),
    /// A reference recording that cannot be cloned (too short, silent, …).
    #[error(transparent)]
    Reference(#[from] crate::family::chatterbox::reference::ReferenceError),
    /// Tone-colour cloning failed (an unusable recording, the converter).
    #[error(transparent)]
    ToneColor(#[from] crate::tone_color::CloneError),
    /// Even one sentence does not fit in the device's memory.
    #[error("out of memory even for a single sentence on this device")]
    OutOfMemory,
    /// The model failed while running. The message already holds candle's,
    /// so it is not also a `source` (printed twice in an error chain).
    #[error("synthesis failed: {0}")]
    Candle(candle_core::Error),
    /// A sentence too long to synthesize in one piece (an extreme length
    /// scale or speed, or a runaway duration); the edges name their fix.
    #[error("{0}")]
    TooLong(vivace_models::vits::TooLong),
    /// The model panicked on this input (a bug: report it with the text).
    #[error("synthesis failed unexpectedly (a bug in Vivace: please report it with the text)")]
    Panicked,
    /// The service's workers stopped before synthesizing the sentence.
    #[error("the synthesis workers stopped before this sentence")]
    WorkersStopped,
    /// The synthesis workers could not be started.
    #[error("cannot start the synthesis workers: {0}")]
    Workers(std::io::Error),
    /// A request's parameters do not fit the voice's family.
    #[error("invalid synthesis parameters: {0}")]
    InvalidParams(String),
    /// A reference recording or embedding was given to a voice that cannot clone.
    #[error("this voice cannot clone a voice from a recording or embedding: give one of its own speakers, or use a voice that clones")]
    CannotClone,
    /// A tool that only applies to VITS voices got another family.
    #[error("this needs a VITS voice (Piper or MMS), and this voice is of the {0} family")]
    NotVits(&'static str),
    /// No model family recognises the file or directory.
    #[error("{} is not a voice Vivace knows: expected {expected}", path.display())]
    UnknownFormat {
        /// The path given.
        path: PathBuf,
        /// What each family expects.
        expected: String,
    },
    /// Pieces of two voices were mixed (a bug in Vivace).
    #[error("internal error (a bug in Vivace: please report it): {0}")]
    Mismatch(&'static str),
    /// One failure shared by the sentences of a batch.
    #[error(transparent)]
    Shared(Arc<SynthError>),
}

impl From<crate::voice_store::StoreError> for SynthError {
    fn from(e: crate::voice_store::StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<vivace_perf::batch::BackoffError<SynthError>> for SynthError {
    /// Out of memory even at batch 1, or the step's own failure.
    fn from(e: vivace_perf::batch::BackoffError<SynthError>) -> Self {
        match e {
            vivace_perf::batch::BackoffError::OutOfMemory => Self::OutOfMemory,
            vivace_perf::batch::BackoffError::Failed(e) => e,
        }
    }
}

impl SynthError {
    /// The error itself when nothing else holds it, else a shared view of it.
    pub fn unshare(shared: Arc<SynthError>) -> SynthError {
        Arc::try_unwrap(shared).unwrap_or_else(SynthError::Shared)
    }
}

impl From<candle_core::Error> for SynthError {
    fn from(e: candle_core::Error) -> Self {
        match vivace_models::vits::too_long(&e) {
            Some(too_long) => Self::TooLong(too_long.clone()),
            None => Self::Candle(e),
        }
    }
}

pub use crate::family::Sentence;

/// Timings of one `speak` call, for `-v` and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct SpeakReport {
    /// Sentences synthesized.
    pub sentences: usize,
    /// Seconds of audio produced (silences included).
    pub audio_seconds: f64,
    /// Time spent phonemizing.
    pub phonemize: Duration,
    /// Time spent in the model.
    pub synthesize: Duration,
    /// Time from the call to the first sentence handed to the sink.
    pub first_audio: Option<Duration>,
    /// Whole call.
    pub total: Duration,
}

impl SpeakReport {
    /// Adds the figures of a later call (`vivace say` speaks line by line).
    pub fn merge(&mut self, later: &SpeakReport, offset: Duration) {
        self.sentences += later.sentences;
        self.audio_seconds += later.audio_seconds;
        self.phonemize += later.phonemize;
        self.synthesize += later.synthesize;
        if self.first_audio.is_none() {
            self.first_audio = later.first_audio.map(|t| t + offset);
        }
        self.total = offset + later.total;
    }

    /// Model time over audio duration (below 1 is faster than real time).
    pub fn real_time_factor(&self) -> f64 {
        if self.audio_seconds > 0.0 {
            self.synthesize.as_secs_f64() / self.audio_seconds
        } else {
            0.0
        }
    }
}

/// A voice with a runtime of its own, ready to speak: what `vivace say`,
/// the benchmarks and `validate` hold. The runtime starts on first use
/// with the batch and streams last set.
pub struct Synthesizer {
    voice: Arc<dyn Voice>,
    /// Sentences synthesized per step (1: lowest time to first audio).
    batch_size: usize,
    /// Sentences synthesized at the same time on separate threads.
    parallel_sentences: usize,
    /// Intra-op threads per sentence stream after the first sentence.
    stream_threads: usize,
    runtime: OnceLock<Runtime>,
}

/// What a voice loads with besides its checkpoint and device.
#[derive(Debug, Clone)]
pub struct LoadOptions<'a> {
    /// espeak-ng's data directory (written on first use).
    pub espeak_data: &'a Path,
    /// The espeak-ng voice (a language such as `de`) a Piper voice
    /// phonemizes with instead of its own.
    pub espeak_voice: Option<&'a str>,
    /// The tone-colour converter that lets a Piper, MMS or Kokoro voice clone
    /// recordings (`say --clone`, uploaded voices in the service).
    pub tone_color: Option<Arc<crate::tone_color::ToneColor>>,
    /// Run a VITS decoder's heavy convolutions in int8 (`--precision
    /// int8`, CPU only); set by [`Synthesizer::load_planned`] from the plan.
    pub int8_decoder: bool,
}

impl<'a> LoadOptions<'a> {
    /// espeak-ng's data in `espeak_data`, nothing else.
    pub fn new(espeak_data: &'a Path) -> Self {
        Self {
            espeak_data,
            espeak_voice: None,
            tone_color: None,
            int8_decoder: false,
        }
    }
}

impl Synthesizer {
    /// Loads the voice at `path` onto `device` in `dtype`, with the first
    /// model family that recognises it (a Piper `.onnx` with its
    /// `.onnx.json` beside it, a compact `.vivace`, a Hugging Face VITS
    /// checkpoint directory); espeak-ng's data is kept in `espeak_data`,
    /// written on first use.
    pub fn load(
        path: &Path,
        device: &Device,
        dtype: DType,
        espeak_data: &Path,
    ) -> Result<Self, SynthError> {
        Self::load_with(path, device, dtype, &LoadOptions::new(espeak_data))
    }

    /// As [`Synthesizer::load`], with `options` (espeak-ng's data, a
    /// language, the tone-colour converter).
    pub fn load_with(
        path: &Path,
        device: &Device,
        dtype: DType,
        options: &LoadOptions<'_>,
    ) -> Result<Self, SynthError> {
        let ctx = LoadContext {
            device,
            dtype,
            espeak_data: options.espeak_data,
            espeak_voice: options.espeak_voice,
            tone_color: options.tone_color.as_ref(),
            int8_decoder: options.int8_decoder,
        };
        Ok(Self::new(family::load(path, &ctx)?))
    }

    /// Wraps a loaded voice.
    pub fn new(voice: Arc<dyn Voice>) -> Self {
        Self {
            voice,
            batch_size: 1,
            parallel_sentences: 1,
            stream_threads: usize::MAX,
            runtime: OnceLock::new(),
        }
    }

    /// Loads the voice for `optimizer`'s device and plan. When the device was
    /// chosen automatically and the voice fails to load or run there, it falls
    /// back to the CPU with one warning; a device the user named must work.
    /// `options` as in [`Synthesizer::load_with`].
    pub fn load_planned(
        path: &Path,
        optimizer: &Optimizer,
        explicit_device: bool,
        options: &LoadOptions<'_>,
    ) -> Result<(Self, DeviceKind), SynthError> {
        let int8 = optimizer.plan.precision == vivace_perf::plan::Precision::Int8;
        let loaded = optimizer.load_with_fallback(
            explicit_device,
            |device, dtype| {
                let options = LoadOptions {
                    int8_decoder: int8 && device.is_cpu(),
                    ..options.clone()
                };
                Self::load_with(path, device, dtype, &options)
            },
            Self::smoke_test,
        )?;
        let family = loaded.0.voice.capabilities().family;
        if int8 && family != "vits" {
            tracing::warn!(
                "precision int8 applies to VITS voices (Piper, MMS); this {family} voice runs in f32"
            );
        }
        Ok(loaded)
    }

    /// Runs the model once on a tiny input, to prove it works on its device.
    pub fn smoke_test(&self) -> Result<(), SynthError> {
        self.voice.smoke_test()
    }

    /// Sets how many sentences go through the model per step.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
        self.runtime = OnceLock::new();
    }

    /// Sentences per step.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets how many sentences are synthesized at once on separate threads,
    /// and how many intra-op threads each of them uses after the first
    /// sentence (which always gets the whole pool); output order is kept.
    pub fn set_parallel_sentences(&mut self, n: usize, stream_threads: usize) {
        self.parallel_sentences = n.max(1);
        self.stream_threads = stream_threads.max(1);
        self.runtime = OnceLock::new();
    }

    /// The runtime `speak` runs on, started on first use.
    fn runtime(&self) -> Result<&Runtime, SynthError> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let config = RuntimeConfig {
            workers: self.parallel_sentences,
            stream_threads: self.stream_threads,
            ..RuntimeConfig::single_caller(self.batch_size)
        };
        let runtime = Runtime::start(
            vec![Arc::clone(&self.voice)],
            config,
            Arc::new(Metrics::new(Vec::new())),
        )
        .map_err(SynthError::Workers)?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// Synthesizes the first `batch` sentences (or fewer) in one batch,
    /// halving it on out-of-memory and retrying; returns their raw
    /// waveforms and the batch that fitted.
    pub fn synthesize_sentences(
        &self,
        sentences: &[Sentence],
        params: &Params,
        batch: usize,
    ) -> Result<(Vec<Vec<f32>>, usize), SynthError> {
        runtime::render(self.voice.as_ref(), sentences, params, batch)
    }

    /// Measures throughput (audio seconds per second) at doubling batch sizes
    /// up to `max_batch` on `sentences` (cycled to fill a batch) and picks the
    /// knee (see [`vivace_perf::batch::find_batch`]).
    pub fn choose_batch(
        &self,
        sentences: &[Sentence],
        params: &Params,
        max_batch: usize,
    ) -> Result<BatchChoice, SynthError> {
        if sentences.is_empty() {
            return Err(SynthError::EmptyText);
        }
        let rate = f64::from(self.sample_rate());
        let choice = find_batch(max_batch, 0.1, |b| {
            let items: Vec<Sentence> = sentences.iter().cycle().take(b).cloned().collect();
            let start = Instant::now();
            let (audios, fitted) = self
                .synthesize_sentences(&items, params, b)
                .map_err(ProbeError::Failed)?;
            if fitted < b {
                return Err(ProbeError::OutOfMemory);
            }
            let audio: usize = audios.iter().map(Vec::len).sum();
            Ok(audio as f64 / rate / start.elapsed().as_secs_f64())
        })?;
        Ok(choice)
    }

    /// The loaded voice.
    pub fn voice(&self) -> &Arc<dyn Voice> {
        &self.voice
    }

    /// The voice as a VITS voice, for what only VITS has (stage timing, the
    /// stage benchmark, the compact converter, alignment checks).
    pub fn vits(&self) -> Result<&VitsVoice, SynthError> {
        self.voice
            .as_any()
            .downcast_ref::<VitsVoice>()
            .ok_or(SynthError::NotVits(self.voice.capabilities().family))
    }

    /// The voice's defaults with `request` applied.
    pub fn params(&self, request: &Request) -> Result<Params, SynthError> {
        self.voice.params(request)
    }

    /// The voice's own defaults.
    pub fn default_params(&self) -> Result<Params, SynthError> {
        self.voice.params(&Request::default())
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.voice.capabilities().sample_rate
    }

    /// Splits `text` into sentences of model input (the voice's front end).
    pub fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        if text.trim().is_empty() {
            return Err(SynthError::EmptyText);
        }
        self.voice.sentences(text)
    }

    /// Synthesizes `text` into `sink`, sentence by sentence, with
    /// `sentence_silence` seconds between its sentences (Piper's
    /// `PiperVoice.synthesize` plus its CLI's silence), on the runtime:
    /// each sentence goes to the sink as soon as it and those before it are
    /// ready.
    pub fn speak(
        &self,
        text: &str,
        params: &Params,
        post: &PostProcess,
        sentence_silence: f32,
        sink: &mut dyn AudioSink,
    ) -> Result<SpeakReport, SynthError> {
        let start = Instant::now();
        let sentences = self.sentences(text)?;
        let mut report = SpeakReport {
            phonemize: start.elapsed(),
            sentences: sentences.len(),
            ..Default::default()
        };
        let runtime = self.runtime()?;
        let synth_start = Instant::now();
        let delivery = Delivery {
            post: *post,
            sentence_silence,
        };
        let mut order = runtime
            .reserve()
            .map_err(|_| SynthError::WorkersStopped)?
            .submit(0, &sentences, params, delivery)?;
        let mut samples = 0usize;
        let mut writing = Duration::ZERO;
        while let Some(chunk) = order.next_blocking() {
            let audio = chunk.map_err(SynthError::unshare)?;
            let t = Instant::now();
            sink.write(&audio)?;
            writing += t.elapsed();
            samples += audio.len();
            report.first_audio.get_or_insert_with(|| start.elapsed());
        }
        report.synthesize = synth_start.elapsed().saturating_sub(writing);
        report.audio_seconds = samples as f64 / f64::from(self.sample_rate());
        report.total = start.elapsed();
        Ok(report)
    }
}

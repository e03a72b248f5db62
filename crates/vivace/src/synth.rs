//! Text in, audio out: the pipeline behind `vivace say`.
//!
//! Mirrors what Piper 1.8's CLI does for one input: phonemize with espeak-ng
//! into sentences, map phonemes to ids, synthesize each sentence, post-process
//! it (normalize, volume, clip) and write it, with the configured silence
//! between sentences. Sentences go to the sink as soon as each is ready.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use vivace_frontend::audio::{silence_samples, AudioSink, PostProcess};
use vivace_frontend::phonemize::Phonemizer;
use vivace_frontend::vits_tokenizer::VitsTokenizer;
use vivace_models::mms::MmsVoice;
use vivace_models::piper::PiperVoice;
use vivace_models::vits::{SynthesisParams, Vits};
use vivace_perf::batch::{
    classify_failure, find_batch, run_with_backoff, BackoffError, BatchChoice, ProbeError,
};
use vivace_perf::{DeviceKind, Optimizer};

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
    /// Even one sentence does not fit in the device's memory.
    #[error("out of memory even for a single sentence on this device")]
    OutOfMemory,
    /// The model failed while running. The message already holds candle's,
    /// so it is not also a `source` (printed twice in an error chain).
    #[error("synthesis failed: {0}")]
    Candle(candle_core::Error),
    /// The model panicked on this input (a bug: report it with the text).
    #[error("synthesis failed unexpectedly (a bug in Vivace: please report it with the text)")]
    Panicked,
    /// The service's workers stopped before synthesizing the sentence.
    #[error("the synthesis workers stopped before this sentence")]
    WorkersStopped,
}

impl From<candle_core::Error> for SynthError {
    fn from(e: candle_core::Error) -> Self {
        Self::Candle(e)
    }
}

/// One sentence ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// Phonemes, one code point each (spaces and punctuation included).
    pub phonemes: Vec<String>,
    /// The model's input ids, with Piper's BOS/EOS/padding.
    pub ids: Vec<i64>,
}

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

/// A loaded voice with the front end its model reads.
pub enum Voice {
    /// A Piper voice: espeak-ng phonemes mapped to ids.
    Piper {
        /// The voice.
        voice: PiperVoice,
        /// Its phonemizer.
        phonemizer: Phonemizer,
    },
    /// A Hugging Face VITS checkpoint (MMS-TTS): characters mapped to ids.
    Mms {
        /// The voice.
        voice: MmsVoice,
        /// Its tokenizer.
        tokenizer: VitsTokenizer,
    },
}

impl Voice {
    /// The model.
    pub fn model(&self) -> &Vits {
        match self {
            Voice::Piper { voice, .. } => &voice.model,
            Voice::Mms { voice, .. } => &voice.model,
        }
    }

    /// The voice's own default scales (its config file's).
    pub fn default_params(&self) -> SynthesisParams {
        match self {
            Voice::Piper { voice, .. } => voice.config.default_params(),
            Voice::Mms { voice, .. } => voice.defaults,
        }
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        match self {
            Voice::Piper { voice, .. } => voice.config.audio.sample_rate,
            Voice::Mms { voice, .. } => voice.config.sampling_rate,
        }
    }

    /// The speaker id for `given`: a name of the voice's speaker map (Piper)
    /// or an index.
    pub fn speaker(&self, given: &str) -> Result<u32, SynthError> {
        match self {
            Voice::Piper { voice, .. } => Ok(voice.config.speaker(given)?),
            Voice::Mms { voice, .. } => {
                let speakers = voice.config.num_speakers;
                match given.trim().parse::<u32>() {
                    Ok(id) if (id as usize) < speakers => Ok(id),
                    _ => Err(SynthError::Model(vivace_models::Error::InvalidInput(format!(
                        "speaker {given:?}: this voice has {speakers} speaker(s), give an index from 0 to {}",
                        speakers.saturating_sub(1)
                    )))),
                }
            }
        }
    }
}

/// A voice with its front end, ready to speak.
pub struct Synthesizer {
    voice: Voice,
    /// Sentences synthesized per model call (1: lowest time to first audio).
    batch_size: usize,
    /// Sentences synthesized at the same time on separate threads.
    parallel_sentences: usize,
    /// Intra-op threads per sentence stream after the first sentence.
    stream_threads: usize,
}

impl Synthesizer {
    /// Loads the voice at `path` onto `device` in `dtype`: a Piper `.onnx`
    /// (its `.onnx.json` beside it; espeak-ng's data is kept in `espeak_data`,
    /// written on first use) or a Hugging Face VITS checkpoint directory.
    pub fn load(
        path: &Path,
        device: &Device,
        dtype: DType,
        espeak_data: &Path,
    ) -> Result<Self, SynthError> {
        let voice = if MmsVoice::is_checkpoint(path) {
            Voice::Mms {
                tokenizer: VitsTokenizer::from_dir(path)?,
                voice: MmsVoice::load(path, device, dtype)?,
            }
        } else {
            let voice = PiperVoice::load(path, device, dtype)?;
            let phonemizer = Phonemizer::new(&voice.config.espeak.voice, espeak_data)?
                .with_vowel_clusters(voice.config.vowel_clusters.clone());
            Voice::Piper { voice, phonemizer }
        };
        Ok(Self {
            voice,
            batch_size: 1,
            parallel_sentences: 1,
            stream_threads: usize::MAX,
        })
    }

    /// Loads the voice for `optimizer`'s device and plan. When the device was
    /// chosen automatically and the voice fails to load or run there, it falls
    /// back to the CPU with one warning; a device the user named must work.
    pub fn load_planned(
        onnx: &Path,
        optimizer: &Optimizer,
        explicit_device: bool,
        espeak_data: &Path,
    ) -> Result<(Self, DeviceKind), SynthError> {
        optimizer.load_with_fallback(
            explicit_device,
            |device, dtype| Self::load(onnx, device, dtype, espeak_data),
            Self::smoke_test,
        )
    }

    /// Runs the model once on a short id sequence, to prove it works on its device.
    pub fn smoke_test(&self) -> Result<(), SynthError> {
        let ids = match &self.voice {
            Voice::Piper { voice, .. } => voice.phonemes_to_ids(&["a".to_string()]).0,
            Voice::Mms { .. } => vec![0; 3],
        };
        let params = SynthesisParams {
            noise_scale: 0.0,
            noise_w: 0.0,
            ..self.voice.default_params()
        };
        self.voice.model().synthesize(&ids, &params)?;
        Ok(())
    }

    /// Sets how many sentences go through the model per call.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Sentences per model call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets how many sentences are synthesized at once on separate threads,
    /// and how many intra-op threads each of them uses after the first
    /// sentence (which always gets the whole pool); output order is kept.
    pub fn set_parallel_sentences(&mut self, n: usize, stream_threads: usize) {
        self.parallel_sentences = n.max(1);
        self.stream_threads = stream_threads.max(1);
    }

    /// Synthesizes `sentences` on `parallel_sentences` worker threads and
    /// hands each waveform to `emit` in order, as soon as it and all before
    /// it are ready (so the first sentence streams out while later ones run).
    fn synthesize_in_parallel(
        &self,
        sentences: &[Sentence],
        params: &SynthesisParams,
        mut emit: impl FnMut(Vec<f32>) -> Result<(), SynthError>,
    ) -> Result<(), SynthError> {
        use std::collections::BTreeMap;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Vec<f32>, SynthError>)>();
        std::thread::scope(|scope| {
            for worker in 0..self.parallel_sentences.min(sentences.len()) {
                let tx = tx.clone();
                let (next, stop) = (&next, &stop);
                scope.spawn(move || {
                    // After the first sentence the streams split the cores:
                    // each runs its kernels on its own, smaller rayon pool.
                    let pool = match self.stream_threads < rayon::current_num_threads() {
                        true => rayon::ThreadPoolBuilder::new()
                            .num_threads(self.stream_threads)
                            .thread_name(move |_| format!("vivace-stream-{worker}"))
                            .build()
                            .ok(),
                        false => None,
                    };
                    loop {
                        // The first sentence runs alone, with every core, so the
                        // first audio is as early as without parallelism; helpers
                        // join once the first worker has moved on to sentence 2.
                        while worker > 0
                            && next.load(Ordering::Relaxed) < 2
                            && !stop.load(Ordering::Relaxed)
                        {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= sentences.len() || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let run = || {
                            self.voice
                                .model()
                                .synthesize(&sentences[i].ids, params)
                                .map_err(SynthError::from)
                        };
                        let audio = match (&pool, i) {
                            (Some(pool), 1..) => pool.install(run),
                            _ => run(),
                        };
                        if tx.send((i, audio)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut pending = BTreeMap::new();
            let mut want = 0;
            for (i, audio) in rx {
                pending.insert(i, audio);
                while let Some(audio) = pending.remove(&want) {
                    let result = audio.and_then(&mut emit);
                    if let Err(e) = result {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    want += 1;
                }
            }
            Ok(())
        })
    }

    /// Synthesizes the first `batch` sentences (or fewer) in one model call,
    /// halving the batch on out-of-memory and retrying; returns their float
    /// waveforms and the batch that fitted.
    pub fn synthesize_sentences(
        &self,
        sentences: &[Sentence],
        params: &SynthesisParams,
        batch: usize,
    ) -> Result<(Vec<Vec<f32>>, usize), SynthError> {
        let items: Vec<(&[i64], SynthesisParams)> = sentences
            .iter()
            .map(|s| (s.ids.as_slice(), *params))
            .collect();
        self.synthesize_items(&items, batch)
    }

    /// Synthesizes the first `batch` items (or fewer) in one model call, each
    /// with its own parameters (the service batches sentences of different
    /// requests), halving the batch on out-of-memory and retrying; returns
    /// their float waveforms and the batch that fitted.
    pub fn synthesize_items(
        &self,
        items: &[(&[i64], SynthesisParams)],
        batch: usize,
    ) -> Result<(Vec<Vec<f32>>, usize), SynthError> {
        let result = run_with_backoff(batch.min(items.len()), |b| {
            self.voice
                .model()
                .synthesize_batch(&items[..b])
                .map_err(classify_failure)
        });
        match result {
            Ok(done) => Ok(done),
            Err(BackoffError::OutOfMemory) => Err(SynthError::OutOfMemory),
            Err(BackoffError::Failed(e)) => Err(e.into()),
        }
    }

    /// Measures throughput (audio seconds per second) at doubling batch sizes
    /// up to `max_batch` on `sentences` (cycled to fill a batch) and picks the
    /// knee (see [`vivace_perf::batch::find_batch`]).
    pub fn choose_batch(
        &self,
        sentences: &[Sentence],
        params: &SynthesisParams,
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
    pub fn voice(&self) -> &Voice {
        &self.voice
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.voice.sample_rate()
    }

    /// Splits `text` into sentences of model input: for Piper voices,
    /// phonemes and ids as Piper does; for MMS voices, split at sentence
    /// ends, and the tokenizer's characters (as the "phonemes") and ids.
    pub fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        if text.trim().is_empty() {
            return Err(SynthError::EmptyText);
        }
        let mut out = Vec::new();
        match &self.voice {
            Voice::Piper { voice, phonemizer } => {
                for phonemes in phonemizer.phonemize(text)? {
                    if phonemes.is_empty() {
                        continue; // as Piper: a sentence with nothing to say is skipped
                    }
                    let (ids, missing) = voice.phonemes_to_ids(&phonemes);
                    if !missing.is_empty() {
                        tracing::warn!(
                            ?missing,
                            "phonemes missing from the voice's id map were dropped"
                        );
                    }
                    out.push(Sentence { phonemes, ids });
                }
            }
            Voice::Mms { tokenizer, .. } => {
                for part in split_sentences(text) {
                    let chars = tokenizer.prepare(part)?;
                    if chars.is_empty() {
                        continue;
                    }
                    out.push(Sentence {
                        ids: tokenizer.encode_prepared(&chars),
                        phonemes: chars.iter().map(char::to_string).collect(),
                    });
                }
                if out.is_empty() {
                    // Let the tokenizer say why (no usable characters).
                    tokenizer.encode(text)?;
                }
            }
        }
        Ok(out)
    }

    /// Synthesizes `text` into `sink`, sentence by sentence, with
    /// `sentence_silence` seconds between its sentences (Piper's
    /// `PiperVoice.synthesize` plus its CLI's silence).
    pub fn speak(
        &self,
        text: &str,
        params: &SynthesisParams,
        post: &PostProcess,
        sentence_silence: f32,
        sink: &mut dyn AudioSink,
    ) -> Result<SpeakReport, SynthError> {
        let start = Instant::now();
        let sentences = self.sentences(text)?;
        let mut report = SpeakReport {
            phonemize: start.elapsed(),
            ..Default::default()
        };
        let silence = vec![0f32; silence_samples(self.sample_rate(), sentence_silence)];
        let mut samples = 0usize;
        let mut done = 0;
        let mut emit = |mut audio: Vec<f32>, report: &mut SpeakReport| -> Result<(), SynthError> {
            post.apply(&mut audio);
            if done > 0 && !silence.is_empty() {
                sink.write(&silence)?;
                samples += silence.len();
            }
            sink.write(&audio)?;
            samples += audio.len();
            report.first_audio.get_or_insert_with(|| start.elapsed());
            report.sentences += 1;
            done += 1;
            Ok(())
        };
        if self.parallel_sentences > 1 && self.batch_size == 1 && sentences.len() > 1 {
            let synth_start = Instant::now();
            self.synthesize_in_parallel(&sentences, params, |audio| emit(audio, &mut report))?;
            report.synthesize += synth_start.elapsed();
        } else {
            let mut next = 0;
            while next < sentences.len() {
                let t = Instant::now();
                let (audios, _) =
                    self.synthesize_sentences(&sentences[next..], params, self.batch_size)?;
                report.synthesize += t.elapsed();
                next += audios.len();
                for audio in audios {
                    emit(audio, &mut report)?;
                }
            }
        }
        report.audio_seconds = samples as f64 / f64::from(self.sample_rate());
        report.total = start.elapsed();
        Ok(report)
    }
}

/// Splits text at sentence ends (`.`, `!`, `?`, `;` followed by white space)
/// and line breaks, so long input streams sentence by sentence; MMS voices
/// are trained on single utterances without punctuation, which the
/// tokenizer drops.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|&(_, n)| n.is_whitespace());
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' | ';' if next_is_space => Some(i + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            if !text[start..end].trim().is_empty() {
                parts.push(&text[start..end]);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

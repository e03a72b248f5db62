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
use vivace_models::piper::PiperVoice;
use vivace_models::vits::SynthesisParams;
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
    /// The model failed while running.
    #[error("synthesis failed: {0}")]
    Candle(#[from] candle_core::Error),
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

/// A Piper voice with its phonemizer, ready to speak.
pub struct Synthesizer {
    voice: PiperVoice,
    phonemizer: Phonemizer,
}

impl Synthesizer {
    /// Loads the voice at `onnx` (its `.onnx.json` beside it) onto `device`
    /// in `dtype`; espeak-ng's data is kept in `espeak_data` (written on first use).
    pub fn load(
        onnx: &Path,
        device: &Device,
        dtype: DType,
        espeak_data: &Path,
    ) -> Result<Self, SynthError> {
        let voice = PiperVoice::load(onnx, device, dtype)?;
        let phonemizer = Phonemizer::new(&voice.config.espeak.voice, espeak_data)?
            .with_vowel_clusters(voice.config.vowel_clusters.clone());
        Ok(Self { voice, phonemizer })
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
        let plan = &optimizer.plan;
        let kind = optimizer.device.kind;
        let attempt = Self::load(onnx, &optimizer.device.device, plan.dtype(), espeak_data)
            .and_then(|s| s.smoke_test().map(|()| s));
        match attempt {
            Ok(s) => Ok((s, kind)),
            Err(e) if !explicit_device && kind != DeviceKind::Cpu => {
                tracing::warn!("voice failed on {kind} ({e}); falling back to the CPU");
                let s = Self::load(onnx, &Device::Cpu, DType::F32, espeak_data)?;
                Ok((s, DeviceKind::Cpu))
            }
            Err(e) => Err(e),
        }
    }

    /// Runs the model once on a short id sequence, to prove it works on its device.
    pub fn smoke_test(&self) -> Result<(), SynthError> {
        let (ids, _) = self.voice.phonemes_to_ids(&["a".to_string()]);
        let params = SynthesisParams {
            noise_scale: 0.0,
            noise_w: 0.0,
            ..self.voice.config.default_params()
        };
        self.voice.model.synthesize(&ids, &params)?;
        Ok(())
    }

    /// The loaded voice.
    pub fn voice(&self) -> &PiperVoice {
        &self.voice
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.voice.config.audio.sample_rate
    }

    /// Splits `text` into sentences of phonemes and ids, as Piper does.
    pub fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        if text.trim().is_empty() {
            return Err(SynthError::EmptyText);
        }
        let mut out = Vec::new();
        for phonemes in self.phonemizer.phonemize(text)? {
            if phonemes.is_empty() {
                continue; // as Piper: a sentence with nothing to say is skipped
            }
            let (ids, missing) = self.voice.phonemes_to_ids(&phonemes);
            if !missing.is_empty() {
                tracing::warn!(
                    ?missing,
                    "phonemes missing from the voice's id map were dropped"
                );
            }
            out.push(Sentence { phonemes, ids });
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
        for (i, sentence) in sentences.iter().enumerate() {
            let t = Instant::now();
            let mut audio = self.voice.model.synthesize(&sentence.ids, params)?;
            report.synthesize += t.elapsed();
            post.apply(&mut audio);
            if i > 0 && !silence.is_empty() {
                sink.write(&silence)?;
                samples += silence.len();
            }
            sink.write(&audio)?;
            samples += audio.len();
            report.first_audio.get_or_insert_with(|| start.elapsed());
            report.sentences += 1;
        }
        report.audio_seconds = samples as f64 / f64::from(self.sample_rate());
        report.total = start.elapsed();
        Ok(report)
    }
}

//! Cloning by re-voicing, for families whose network has no speaker
//! conditioning of its own (VITS, Kokoro): a recording's tone colour is
//! measured with OpenVoice's converter (`crate::tone_color`), and each
//! sentence a cloned speaker says is first spoken by the voice itself, then
//! converted from the voice's own tone colour (measured once on a
//! calibration text, cached beside the voice) to the recording's, and
//! brought back to the voice's sample rate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vivace_frontend::resample::resample;

use super::{ClonedSpeaker, SpeakerRef};
use crate::synth::SynthError;
use crate::tone_color::{Embeddings, ToneColor, DEFAULT_TAU};

/// How a voice says a text plainly (its own speaker, default manner):
/// mono audio and its rate, or why it could not.
pub type Speak<'a> = &'a dyn Fn(&str) -> Result<(Vec<f32>, u32), String>;

/// What a voice clones with: the converter, the voice's file (where its
/// own tone colour is cached) and that tone colour once measured.
pub struct Cloning {
    tone_color: Arc<ToneColor>,
    voice: PathBuf,
    own: Mutex<Option<Vec<f32>>>,
}

impl Cloning {
    /// Cloning for the voice at `voice` with the converter `tone_color`.
    pub fn new(tone_color: &Arc<ToneColor>, voice: &Path) -> Self {
        Self {
            tone_color: Arc::clone(tone_color),
            voice: voice.to_path_buf(),
            own: Mutex::new(None),
        }
    }

    /// The voice's own tone colour: read from the cache beside the voice
    /// or measured on `speak`'s calibration speech, then kept.
    fn own_tone_colour(&self, speak: Speak<'_>) -> Result<Vec<f32>, SynthError> {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(embedding) = own.as_ref() {
            return Ok(embedding.clone());
        }
        let embedding = self.tone_color.voice_embedding(&self.voice, speak)?;
        *own = Some(embedding.clone());
        Ok(embedding)
    }

    /// The tone colours that turn this voice into `target`.
    pub fn tone_for(
        &self,
        target: Vec<f32>,
        speak: Speak<'_>,
    ) -> Result<Arc<Embeddings>, SynthError> {
        let size = self.tone_color.embedding_size();
        if target.len() != size {
            return Err(SynthError::InvalidParams(format!(
                "a tone-colour embedding of {} values; the converter's have {size}",
                target.len()
            )));
        }
        let source = self.own_tone_colour(speak)?;
        Ok(Arc::new(Embeddings { source, target }))
    }

    /// Measures a recording (mono `[-1, 1]` at `sample_rate`) once, for
    /// [`SpeakerRef::Cloned`].
    pub fn clone_speaker(
        &self,
        samples: &[f32],
        sample_rate: u32,
        speak: Speak<'_>,
    ) -> Result<ClonedSpeaker, SynthError> {
        let target = self.embed_recording(samples, sample_rate)?;
        Ok(ClonedSpeaker::new(self.tone_for(target, speak)?))
    }

    /// A reference recording's tone colour.
    fn embed_recording(&self, samples: &[f32], sample_rate: u32) -> Result<Vec<f32>, SynthError> {
        Ok(self
            .tone_color
            .embed(samples, sample_rate, Path::new("the reference recording"))?)
    }

    /// The tone colours a cloning `speaker` asks for; `None` for a
    /// built-in speaker ([`SpeakerRef::Given`]), which the family handles.
    /// A speaker cloned by another voice keeps its target and takes this
    /// voice's own tone colour as the source.
    pub fn tone_of(
        &self,
        speaker: &SpeakerRef,
        speak: Speak<'_>,
    ) -> Result<Option<Arc<Embeddings>>, SynthError> {
        let target = match speaker {
            SpeakerRef::Given(_) => return Ok(None),
            SpeakerRef::Embedding(target) => target.clone(),
            SpeakerRef::Recording {
                samples,
                sample_rate,
            } => self.embed_recording(samples, *sample_rate)?,
            SpeakerRef::Cloned(cloned) => {
                let tone = cloned
                    .get::<Embeddings>()
                    .ok_or(SynthError::Mismatch("a speaker cloned by another family"))?;
                if tone.source == self.own_tone_colour(speak)? {
                    return Ok(Some(tone));
                }
                tone.target.clone()
            }
        };
        self.tone_for(target, speak).map(Some)
    }

    /// `audio` (at `rate`) converted to `tone`'s target, back at `rate`;
    /// `tau` scales the converter's sampling noise (default 0.3, the
    /// reference's), `seed` seeds it.
    pub fn revoice(
        &self,
        audio: &[f32],
        rate: u32,
        tone: &Embeddings,
        tau: Option<f32>,
        seed: Option<u64>,
    ) -> Result<Vec<f32>, SynthError> {
        let converted = self.tone_color.convert(
            audio,
            rate,
            &tone.source,
            &tone.target,
            tau.unwrap_or(DEFAULT_TAU),
            seed,
        )?;
        Ok(resample(&converted, self.tone_color.sample_rate(), rate)?)
    }
}

/// `audio` (at `rate`) re-voiced where the voice clones and its speaker is
/// a clone (`tone`), else returned as it is (not copied).
pub fn revoiced(
    cloning: Option<&Cloning>,
    tone: Option<&Embeddings>,
    audio: Vec<f32>,
    rate: u32,
    tau: Option<f32>,
    seed: Option<u64>,
) -> Result<Vec<f32>, SynthError> {
    match (cloning, tone) {
        (Some(cloning), Some(tone)) => cloning.revoice(&audio, rate, tone, tau, seed),
        _ => Ok(audio),
    }
}

//! The Kokoro family: Kokoro-82M's int8 export with one of its voice packs
//! (`kokoro:af_heart` is the pack `af_heart.bin` of kokoro-js). Text goes
//! through kokoro-onnx's pipeline (`vivace_frontend::kokoro_text`); each
//! batch of at most 510 phonemes is one sentence and one step, spoken with
//! the pack's row for its length, trimmed of silence as kokoro-onnx trims
//! it, and followed by the pause kokoro-onnx puts after it.
//!
//! The model runs on the CPU in the export's own int8 arithmetic
//! (`vivace_models::kokoro`) whatever device the plan chose; several voices
//! share one loaded model. Loaded with OpenVoice's tone-colour converter, a
//! Kokoro voice clones as VITS voices do (`super::cloning`): each batch of
//! a cloned speaker is re-voiced after synthesis, at 24 kHz.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use vivace_frontend::kokoro_text::{style_row, KokoroText, Language, Vocab, ESPEAK_DATA_DIR};
use vivace_frontend::trim::trim_top_db;
use vivace_models::kokoro::model::{Kokoro, STYLE_WIDTH};
use vivace_models::onnx::OnnxGraph;

use vivace_perf::batch::classify_failure;

use super::cloning::{self, Cloning};
use super::{
    Capabilities, Chunk, ClonedSpeaker, Family, LoadContext, Model, Sentence, SpeakerRef,
    StepError, Voice,
};
use crate::hub::HubFile;
use crate::synth::SynthError;
use crate::tone_color::Embeddings;

/// Kokoro's output rate.
pub const SAMPLE_RATE: u32 = 24_000;
/// The model file a voice pack is spoken with.
pub const MODEL_FILE: &str = "kokoro-v1.0.int8.onnx";
/// The voice store's folder holding [`MODEL_FILE`] and `vocab.json`.
pub const MODEL_DIR: &str = "kokoro-v1.0-int8";
/// How far below the loudest frame a batch's ends count as silence, in dB
/// (librosa's `trim` default, which kokoro-onnx keeps).
const TRIM_TOP_DB: f64 = 60.0;
/// The speeds kokoro-onnx accepts.
const SPEEDS: std::ops::RangeInclusive<f32> = 0.5..=2.0;

/// Kokoro voices: a voice pack named like kokoro-js's (`af_heart.bin`).
pub struct KokoroFamily;

impl Family for KokoroFamily {
    fn name(&self) -> &'static str {
        "kokoro"
    }

    fn expects(&self) -> &'static str {
        "a Kokoro voice (`kokoro:af_heart`, after `vivace download kokoro`), or a voice pack NAME.bin with kokoro-v1.0.int8.onnx and vocab.json beside it"
    }

    fn recognizes(&self, path: &Path) -> bool {
        is_voice_pack(path)
    }

    fn load(&self, path: &Path, ctx: &LoadContext<'_>) -> Result<Arc<dyn Voice>, SynthError> {
        let mut voice = KokoroVoice::load(path, ctx.espeak_data)?;
        if let Some(tone_color) = ctx.tone_color {
            voice.cloning = Some(Cloning::new(tone_color, path));
            voice.capabilities.clones = true;
        }
        Ok(Arc::new(voice))
    }

    fn hub_files(&self) -> &'static [HubFile] {
        &[]
    }
}

/// Whether `path` is named like one of Kokoro's voice packs: `xy_name.bin`,
/// `x` a language letter, `y` `f` or `m`.
pub fn is_voice_pack(path: &Path) -> bool {
    if path.extension().is_none_or(|e| e != "bin") {
        return false;
    }
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    let mut chars = stem.chars();
    matches!(
        (chars.next(), chars.next(), chars.next()),
        (Some(_), Some('f' | 'm'), Some('_'))
    ) && Language::for_voice(stem).is_some()
}

/// Where the model for the voice pack at `pack` is: beside it, or in the
/// voice store's layout (`weights/kokoro-v1.0-int8/` next to the packs'
/// folder).
pub fn model_dir(pack: &Path) -> Option<PathBuf> {
    let folder = pack.parent().unwrap_or(Path::new(""));
    std::iter::once(folder.to_path_buf())
        .chain(folder.parent().map(|up| up.join(MODEL_DIR)))
        .find(|dir| dir.join(MODEL_FILE).is_file())
}

/// Models loaded in this process, by file: voices share one.
static LOADED: Mutex<Vec<(PathBuf, Weak<Kokoro>)>> = Mutex::new(Vec::new());

/// The model at `path`, loaded once while any voice holds it.
fn shared_model(path: &Path) -> Result<Arc<Kokoro>, SynthError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    loaded.retain(|(_, model)| model.strong_count() > 0);
    if let Some(model) = loaded
        .iter()
        .find(|(p, _)| p == path)
        .and_then(|(_, m)| m.upgrade())
    {
        return Ok(model);
    }
    let model = Arc::new(Kokoro::load(&OnnxGraph::read(path)?)?);
    loaded.push((path.to_path_buf(), Arc::downgrade(&model)));
    Ok(model)
}

/// A voice pack: rows of [`STYLE_WIDTH`] little-endian f32, one per
/// phoneme count.
fn read_pack(path: &Path) -> Result<Vec<f32>, SynthError> {
    let bad = |reason: String| {
        SynthError::Model(vivace_models::Error::InvalidInput(format!(
            "Kokoro voice pack {}: {reason}",
            path.display()
        )))
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let row_bytes = STYLE_WIDTH * 4;
    if bytes.is_empty() || bytes.len() % row_bytes != 0 {
        return Err(bad(format!(
            "{} bytes is not a whole number of {STYLE_WIDTH}-wide float32 rows (kokoro-js's voices are 510 rows, 522,240 bytes)",
            bytes.len()
        )));
    }
    let pack: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if pack.iter().any(|v| !v.is_finite()) {
        return Err(bad("it holds values that are not finite numbers".into()));
    }
    Ok(pack)
}

/// A Kokoro voice's parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KokoroParams {
    /// Speaking rate, 0.5 to 2 (1 is the voice's own), as kokoro-onnx's `speed`.
    pub speed: f32,
    /// For a cloned speaker: scale of the converter's sampling noise (0:
    /// deterministic; default 0.3, the reference's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f32>,
    /// For a cloned speaker: seeds the converter's noise (Kokoro itself
    /// has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// For a cloned speaker: the voice's own tone colour and the clone's.
    #[serde(skip)]
    pub tone: Option<Arc<Embeddings>>,
}

/// One batch in flight: its model input, the style row it is spoken with,
/// and its parameters.
pub struct KokoroSequence {
    tokens: Vec<i64>,
    style: Vec<f32>,
    params: KokoroParams,
}

/// A loaded Kokoro voice: the shared model, its text front end, its pack.
pub struct KokoroVoice {
    model: Arc<Kokoro>,
    text: KokoroText,
    language: Language,
    name: String,
    pack: Vec<f32>,
    capabilities: Capabilities,
    cloning: Option<Cloning>,
}

impl KokoroVoice {
    /// Loads the voice pack at `path` with the model beside it (or in the
    /// voice store), phonemizing with espeak-ng 1.52.0's data under
    /// `espeak_root` (the store's espeak-ng folder).
    pub fn load(path: &Path, espeak_root: &Path) -> Result<Self, SynthError> {
        let missing = |what: String| {
            SynthError::Model(vivace_models::Error::InvalidInput(format!(
                "{what}: run `vivace download kokoro` (or put it beside {})",
                path.display()
            )))
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let language = Language::for_voice(&name)
            .ok_or_else(|| missing(format!("{name} is not named like a Kokoro voice")))?;
        let dir = model_dir(path)
            .ok_or_else(|| missing(format!("Kokoro's model {MODEL_FILE} is not installed")))?;
        let espeak = espeak_root.join(ESPEAK_DATA_DIR);
        if !espeak.join("espeak-ng-data/phontab").is_file() {
            return Err(missing(format!(
                "espeak-ng 1.52.0's data (Kokoro's phonemizer) is not in {}",
                espeak.display()
            )));
        }
        let vocab_path = dir.join("vocab.json");
        let vocab = Vocab::load(&vocab_path)?;
        let pack = read_pack(path)?;
        let model = shared_model(&dir.join(MODEL_FILE))?;
        if usize::try_from(vocab.max_id()).unwrap_or(usize::MAX) >= model.vocab_size() {
            return Err(SynthError::Model(vivace_models::Error::InvalidInput(format!(
                "{}: token id {} is past the model's {} embeddings: this vocabulary belongs to another Kokoro model",
                vocab_path.display(),
                vocab.max_id(),
                model.vocab_size()
            ))));
        }
        Ok(Self {
            model,
            text: KokoroText::new(&espeak, vocab),
            language,
            capabilities: Capabilities {
                family: "kokoro",
                sample_rate: SAMPLE_RATE,
                speakers: 1,
                speaker_names: vec![name.clone()],
                languages: vec![language.code.to_string()],
                clones: false,
                streams: false,
            },
            name,
            pack,
            cloning: None,
        })
    }

    /// The language it phonemizes in.
    pub fn language(&self) -> Language {
        self.language
    }

    /// `text` spoken plainly, batches joined (trimmed, no pauses): what
    /// its tone colour is measured on.
    fn speak_plainly(&self, text: &str) -> Result<(Vec<f32>, u32), String> {
        let mut audio = Vec::new();
        for sentence in Model::sentences(self, text).map_err(|e| e.to_string())? {
            let style = self.style_for(sentence.ids.len().saturating_sub(2));
            audio.extend(self.spoken(&sentence.ids, &style, 1.0));
        }
        Ok((audio, SAMPLE_RATE))
    }

    /// One batch spoken and trimmed of silence as kokoro-onnx trims it.
    fn spoken(&self, tokens: &[i64], style: &[f32], speed: f32) -> Vec<f32> {
        let synthesis = self.model.synthesize(tokens, style, speed);
        trim_top_db(&synthesis.audio, TRIM_TOP_DB).to_vec()
    }

    /// The pack's row for `ids` token ids (without the pads).
    fn style_for(&self, ids: usize) -> Vec<f32> {
        let rows = self.pack.len() / STYLE_WIDTH;
        let row = style_row(ids, rows);
        self.pack[row * STYLE_WIDTH..(row + 1) * STYLE_WIDTH].to_vec()
    }
}

impl Model for KokoroVoice {
    type Params = KokoroParams;
    type State = KokoroSequence;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn default_params(&self) -> KokoroParams {
        KokoroParams {
            speed: 1.0,
            tau: None,
            seed: None,
            tone: None,
        }
    }

    fn set_speed(&self, params: &mut KokoroParams, speed: f64) {
        params.speed = speed as f32;
    }

    fn set_speaker(
        &self,
        params: &mut KokoroParams,
        speaker: &SpeakerRef,
    ) -> Result<(), SynthError> {
        match speaker {
            SpeakerRef::Given(given) if given.trim() == self.name || given.trim() == "0" => Ok(()),
            SpeakerRef::Given(given) => Err(SynthError::InvalidParams(format!(
                "speaker {given:?}: a Kokoro voice has one speaker, {}; to speak with another pack, use the voice kokoro:{}",
                self.name,
                given.trim()
            ))),
            _ => {
                let cloning = self.cloning.as_ref().ok_or(SynthError::CannotClone)?;
                params.tone = cloning.tone_of(speaker, &|text| self.speak_plainly(text))?;
                Ok(())
            }
        }
    }

    fn set_seed(&self, params: &mut KokoroParams, seed: u64) {
        params.seed = Some(seed);
    }

    fn clone_speaker(
        &self,
        samples: &[f32],
        sample_rate: u32,
    ) -> Result<ClonedSpeaker, SynthError> {
        let cloning = self.cloning.as_ref().ok_or(SynthError::CannotClone)?;
        cloning.clone_speaker(samples, sample_rate, &|text| self.speak_plainly(text))
    }

    fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        if text.trim().is_empty() {
            return Err(SynthError::EmptyText);
        }
        let batches = self.text.batches(text, self.language)?;
        Ok(batches
            .into_iter()
            .map(|batch| Sentence {
                ids: batch.model_input(),
                pause_after: Some(batch.pause_seconds),
                phonemes: batch.phonemes.chars().map(String::from).collect(),
            })
            .collect())
    }

    fn start(
        &self,
        sentence: &Sentence,
        params: &KokoroParams,
    ) -> Result<KokoroSequence, SynthError> {
        if !SPEEDS.contains(&params.speed) {
            return Err(SynthError::InvalidParams(format!(
                "speed {} is outside the 0.5 to 2.0 Kokoro speaks at",
                params.speed
            )));
        }
        let max = vivace_frontend::kokoro_text::MAX_PHONEMES + 2;
        if sentence.ids.len() > max {
            return Err(SynthError::InvalidParams(format!(
                "{} tokens in one batch, more than Kokoro's {max}",
                sentence.ids.len()
            )));
        }
        Ok(KokoroSequence {
            style: self.style_for(sentence.ids.len().saturating_sub(2)),
            tokens: sentence.ids.clone(),
            params: params.clone(),
        })
    }

    fn step(&self, batch: &mut [&mut KokoroSequence]) -> Result<Vec<Chunk>, StepError> {
        batch
            .iter()
            .map(|sequence| {
                let params = &sequence.params;
                let audio = self.spoken(&sequence.tokens, &sequence.style, params.speed);
                let audio = cloning::revoiced(
                    self.cloning.as_ref(),
                    params.tone.as_deref(),
                    audio,
                    SAMPLE_RATE,
                    params.tau,
                    params.seed,
                )
                .map_err(classify_failure)?;
                Ok(Chunk { audio, done: true })
            })
            .collect()
    }

    fn smoke_test(&self) -> Result<(), SynthError> {
        let audio = self
            .model
            .synthesize(&[0, 43, 0], &self.style_for(1), 1.0)
            .audio;
        if audio.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(SynthError::Mismatch(
                "Kokoro's smoke test gave non-finite audio",
            ))
        }
    }
}

//! The VITS family: Piper voices (espeak-ng phonemes) and Hugging Face VITS
//! checkpoints (MMS-TTS, characters). One step synthesizes a whole sentence.
//!
//! Loaded with a tone-colour converter (`LoadContext::tone_color`), a VITS
//! voice clones: `clone_speaker` measures a recording's tone colour (and,
//! once, the voice's own), and each sentence of a cloned speaker is
//! re-voiced by OpenVoice's converter after synthesis, then brought back to
//! the voice's sample rate.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;
use vivace_frontend::hebrew;
use vivace_frontend::japanese::JapanesePhonemizer;
use vivace_frontend::phonemize::{split_long_sentence, Phonemizer, TextFilter, ALL_LANGUAGES_DIR};
use vivace_frontend::sentences::split_sentences;
use vivace_frontend::thai::ThaiPhonemizer;
use vivace_frontend::vits_tokenizer::VitsTokenizer;
use vivace_models::mms::MmsVoice;
use vivace_models::nakdimon::Nakdimon;
use vivace_models::piper::{PiperConfig, PiperVoice};
use vivace_models::tashkeel::Diacritizer;
use vivace_models::vits::{SynthesisParams, Vits};
use vivace_perf::batch::classify_failure;

use super::cloning::{self, Cloning};
use super::{
    Capabilities, Chunk, ClonedSpeaker, Family, LoadContext, Model, Sentence, SpeakerRef,
    StepError, Voice,
};
use crate::hub::HubFile;
use crate::synth::SynthError;
use crate::tone_color::Embeddings;

/// A VITS voice's parameters: the network's own, and for a cloned speaker
/// the tone colours its speech is re-voiced with. Unknown fields are
/// refused (a flattened struct would accept them, so `Deserialize` is
/// written out).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VitsParams {
    /// The network's scales, speaker and seed.
    #[serde(flatten)]
    pub synthesis: SynthesisParams,
    /// For a cloned speaker: scale of the converter's sampling noise (0:
    /// deterministic; default 0.3, the reference's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f32>,
    /// For a cloned speaker: the voice's own tone colour and the clone's.
    #[serde(skip)]
    pub tone: Option<Arc<Embeddings>>,
}

impl<'de> serde::Deserialize<'de> for VitsParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let tau = match fields.remove("tau") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(serde_json::from_value::<f32>(value).map_err(D::Error::custom)?),
        };
        let synthesis =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(Self {
            synthesis,
            tau,
            tone: None,
        })
    }
}

/// Recognises and loads Piper voices (`.onnx` or compact `.vivace`, with
/// their `.onnx.json`) and Hugging Face VITS checkpoint directories.
pub struct VitsFamily;

impl Family for VitsFamily {
    fn name(&self) -> &'static str {
        "vits"
    }

    fn expects(&self) -> &'static str {
        "a Piper .onnx or .vivace file with its .onnx.json, or a Hugging Face VITS checkpoint directory"
    }

    fn recognizes(&self, path: &Path) -> bool {
        // Any file (or missing path) is Piper's to read or to explain.
        MmsVoice::is_checkpoint(path) || !path.is_dir()
    }

    fn load(&self, path: &Path, ctx: &LoadContext<'_>) -> Result<Arc<dyn Voice>, SynthError> {
        Ok(Arc::new(VitsVoice::load(path, ctx)?))
    }

    /// A Hugging Face `VitsModel` checkpoint (MMS-TTS); Piper voices on the
    /// Hub sit in per-voice folders, so those are named with `--file`.
    fn hub_files(&self) -> &'static [HubFile] {
        const FILES: &[HubFile] = &[
            HubFile {
                name: Cow::Borrowed("config.json"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("model.safetensors"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("vocab.json"),
                required: true,
            },
            HubFile {
                name: Cow::Borrowed("tokenizer_config.json"),
                required: false,
            },
            HubFile {
                name: Cow::Borrowed("added_tokens.json"),
                required: false,
            },
            HubFile {
                name: Cow::Borrowed("special_tokens_map.json"),
                required: false,
            },
        ];
        FILES
    }
}

/// How a Piper voice turns text into phonemes (its `phoneme_type`).
pub enum PiperPhonemes {
    /// espeak-ng (`espeak`), Arabic diacritized first.
    Espeak(Phonemizer),
    /// Piper's Hebrew front end (`hebrew`): Nakdimon restores the points
    /// (unless the text has some), then piper-tts's rules give IPA.
    Hebrew(Arc<Nakdimon>),
    /// Piper's Thai front end (`thai`): TLTK's syllables with tone digits.
    Thai(Arc<ThaiPhonemizer>),
    /// Piper's Japanese front end (`japanese`): OpenJTalk's readings and
    /// pitch accents as IPA with accent marks.
    Japanese(Arc<JapanesePhonemizer>),
    /// Text as its own phonemes (`text`): each code point after NFD is a
    /// phoneme, as in piper-tts.
    Text,
}

impl PiperPhonemes {
    /// The front end for a Piper voice's config: code points for `text`,
    /// OpenJTalk for `japanese`, TLTK for `thai`, Nakdimon
    /// and rules for `hebrew`, else espeak-ng with `espeak_voice` (or the config's
    /// `espeak.voice`), Arabic diacritized first as Piper does
    /// (`use_tashkeel`, its default). The models are read from
    /// `espeak_data` (where the voice store installs piper-tts's data).
    pub fn load(
        config: &PiperConfig,
        espeak_voice: Option<&str>,
        espeak_data: &Path,
    ) -> Result<Self, SynthError> {
        let piper_data = espeak_data.join(ALL_LANGUAGES_DIR);
        if config.phoneme_type == "text" {
            return Ok(Self::Text);
        }
        if config.phoneme_type == "thai" {
            return Ok(Self::Thai(crate::front_ends::thai()?));
        }
        if config.phoneme_type == "japanese" {
            return Ok(Self::Japanese(crate::front_ends::japanese()?));
        }
        if config.phoneme_type == "hebrew" {
            let model = Nakdimon::load(&piper_data.join("hebrew/nakdimon.onnx"))?;
            return Ok(Self::Hebrew(Arc::new(model)));
        }
        let espeak_voice = espeak_voice.unwrap_or(&config.espeak.voice);
        let phonemizer = Phonemizer::new(espeak_voice, espeak_data)?
            .with_vowel_clusters(config.vowel_clusters.clone());
        if espeak_voice != "ar" {
            return Ok(Self::Espeak(phonemizer));
        }
        let diacritizer = Arc::new(Diacritizer::load(&piper_data.join("tashkeel"))?);
        Ok(Self::Espeak(phonemizer.with_text_filter(TextFilter(
            Arc::new(move |part: &str| diacritizer.diacritize(part).map_err(|e| e.to_string())),
        ))))
    }

    /// The text's sentences as phonemes (one code point each).
    pub fn phonemize(&self, text: &str) -> Result<Vec<Vec<String>>, SynthError> {
        match self {
            Self::Espeak(phonemizer) => Ok(phonemizer.phonemize(text)?),
            Self::Thai(thai) => Ok(thai.phonemize(text)),
            Self::Japanese(japanese) => Ok(japanese.phonemize(text)),
            // Piper reads the whole text as one sentence; Vivace speaks it
            // sentence by sentence (each at most a safe length), with the
            // same code points less the white space between sentences.
            Self::Text => Ok(split_sentences(text)
                .into_iter()
                .map(str::trim)
                .filter(|sentence| !sentence.is_empty())
                .map(|sentence| sentence.nfd().map(String::from).collect())
                .collect()),
            Self::Hebrew(nakdimon) => {
                // Piper points and reads the whole text as one sentence;
                // Vivace points it whole (the same context), then speaks it
                // sentence by sentence.
                let pointed = if hebrew::has_niqqud(text) {
                    text.to_string()
                } else {
                    let ids = hebrew::nakdimon_ids(text);
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let [n, d, s] = nakdimon.predict(&ids)?;
                    hebrew::restore_points(text, &n, &d, &s)
                };
                Ok(split_sentences(&pointed)
                    .into_iter()
                    .map(hebrew::to_ipa)
                    .filter(|ipa| !ipa.is_empty())
                    .map(|ipa| ipa.chars().map(String::from).collect())
                    .collect())
            }
        }
    }
}

/// The kind of VITS checkpoint, with the text front end its model reads.
pub enum Checkpoint {
    /// A Piper voice: espeak-ng phonemes mapped to ids by the voice's map.
    Piper {
        /// The voice.
        voice: PiperVoice,
        /// Its phonemizer.
        phonemizer: PiperPhonemes,
    },
    /// A Hugging Face VITS checkpoint (MMS-TTS): characters mapped to ids by
    /// its tokenizer.
    Mms {
        /// The voice.
        voice: MmsVoice,
        /// Its tokenizer.
        tokenizer: VitsTokenizer,
    },
}

/// A loaded VITS voice with its front end.
pub struct VitsVoice {
    checkpoint: Checkpoint,
    capabilities: Capabilities,
    cloning: Option<Cloning>,
}

/// One sentence waiting for its single step.
pub struct VitsSequence {
    ids: Vec<i64>,
    params: VitsParams,
}

/// Runs `model`'s decoder in int8 where a byte dot-product kernel runs
/// (AVX-512 VNNI, AVX-VNNI), and says what it did in the log; elsewhere
/// the integer sums would be slower than f32, which it keeps, with a warning.
fn quantize_decoder(model: &mut vivace_models::vits::Vits) {
    use vivace_models::nn::{cpu_gemm_int8, cpu_kernel};
    if !cpu_gemm_int8::available() {
        tracing::warn!(
            "precision int8 needs AVX-512 VNNI or AVX-VNNI, and the CPU kernel path is {}: the decoder stays f32",
            cpu_kernel::active()
        );
        return;
    }
    let convs = model.quantize_decoder();
    tracing::info!("precision int8: {convs} decoder convolutions on int8 weights and activations");
}

impl VitsVoice {
    /// Loads the Piper voice or VITS checkpoint at `path`.
    pub fn load(path: &Path, ctx: &LoadContext<'_>) -> Result<Self, SynthError> {
        let checkpoint = if MmsVoice::is_checkpoint(path) {
            let mut tokenizer = VitsTokenizer::from_dir(path)?;
            if tokenizer.is_uroman() {
                tokenizer = tokenizer.with_uroman(crate::front_ends::uroman()?);
            }
            let mut voice = MmsVoice::load(path, ctx.device, ctx.dtype)?;
            if ctx.int8_decoder {
                quantize_decoder(&mut voice.model);
            }
            Checkpoint::Mms { tokenizer, voice }
        } else {
            let mut voice = PiperVoice::load(path, ctx.device, ctx.dtype)?;
            if ctx.int8_decoder {
                quantize_decoder(&mut voice.model);
            }
            let phonemizer = PiperPhonemes::load(&voice.config, ctx.espeak_voice, ctx.espeak_data)?;
            Checkpoint::Piper { voice, phonemizer }
        };
        let capabilities = match &checkpoint {
            Checkpoint::Piper { voice, .. } => Capabilities {
                family: "vits",
                sample_rate: voice.config.audio.sample_rate,
                speakers: voice.config.num_speakers.max(1),
                speaker_names: voice.config.speaker_id_map.keys().cloned().collect(),
                languages: vec![ctx
                    .espeak_voice
                    .unwrap_or(&voice.config.espeak.voice)
                    .to_string()],
                clones: ctx.tone_color.is_some(),
                streams: false,
            },
            Checkpoint::Mms { voice, .. } => Capabilities {
                family: "vits",
                sample_rate: voice.config.sampling_rate,
                speakers: voice.config.num_speakers.max(1),
                speaker_names: Vec::new(),
                languages: Vec::new(),
                clones: ctx.tone_color.is_some(),
                streams: false,
            },
        };
        let cloning = ctx
            .tone_color
            .map(|tone_color| Cloning::new(tone_color, path));
        Ok(Self {
            checkpoint,
            capabilities,
            cloning,
        })
    }

    /// `text` in the voice's own default manner (seeded), sentences joined:
    /// what its tone colour is measured on.
    fn speak_plainly(&self, text: &str) -> Result<(Vec<f32>, u32), String> {
        let params = SynthesisParams {
            seed: Some(0),
            ..self.synthesis_defaults()
        };
        let mut audio = Vec::new();
        for sentence in Model::sentences(self, text).map_err(|e| e.to_string())? {
            let samples = self
                .model()
                .synthesize(&sentence.ids, &params)
                .map_err(|e| e.to_string())?;
            audio.extend(samples);
        }
        Ok((audio, self.capabilities.sample_rate))
    }

    /// `audio` of a cloned speaker re-voiced, at the voice's rate.
    fn revoice(&self, audio: Vec<f32>, params: &VitsParams) -> Result<Vec<f32>, SynthError> {
        cloning::revoiced(
            self.cloning.as_ref(),
            params.tone.as_deref(),
            audio,
            self.capabilities.sample_rate,
            params.tau,
            params.synthesis.seed,
        )
    }

    /// The network.
    pub fn model(&self) -> &Vits {
        match &self.checkpoint {
            Checkpoint::Piper { voice, .. } => &voice.model,
            Checkpoint::Mms { voice, .. } => &voice.model,
        }
    }

    /// The checkpoint it was loaded from.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The voice's own scales (its config file's).
    pub fn synthesis_defaults(&self) -> SynthesisParams {
        match &self.checkpoint {
            Checkpoint::Piper { voice, .. } => voice.config.default_params(),
            Checkpoint::Mms { voice, .. } => voice.defaults,
        }
    }

    /// The speaker id for `given`: a name of the voice's speaker map (Piper)
    /// or an index.
    pub fn speaker_id(&self, given: &str) -> Result<u32, SynthError> {
        match &self.checkpoint {
            Checkpoint::Piper { voice, .. } => Ok(voice.config.speaker(given)?),
            Checkpoint::Mms { voice, .. } => {
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

impl Model for VitsVoice {
    type Params = VitsParams;
    type State = VitsSequence;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn default_params(&self) -> VitsParams {
        VitsParams {
            synthesis: self.synthesis_defaults(),
            tau: None,
            tone: None,
        }
    }

    fn set_speed(&self, params: &mut VitsParams, speed: f64) {
        params.synthesis.length_scale /= speed;
    }

    fn set_speaker(&self, params: &mut VitsParams, speaker: &SpeakerRef) -> Result<(), SynthError> {
        if let SpeakerRef::Given(given) = speaker {
            params.synthesis.speaker = Some(self.speaker_id(given)?);
            return Ok(());
        }
        let cloning = self.cloning.as_ref().ok_or(SynthError::CannotClone)?;
        params.tone = cloning.tone_of(speaker, &|text| self.speak_plainly(text))?;
        Ok(())
    }

    fn set_seed(&self, params: &mut VitsParams, seed: u64) {
        params.synthesis.seed = Some(seed);
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
        let mut out = Vec::new();
        match &self.checkpoint {
            Checkpoint::Piper { voice, phonemizer } => {
                let sentences = phonemizer.phonemize(text)?;
                for phonemes in sentences.into_iter().flat_map(split_long_sentence) {
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
                    out.push(Sentence {
                        phonemes,
                        ids,
                        pause_after: None,
                    });
                }
            }
            Checkpoint::Mms { tokenizer, .. } => {
                for part in split_sentences(text) {
                    let chars = tokenizer.prepare(part)?;
                    if chars.is_empty() {
                        continue;
                    }
                    out.push(Sentence {
                        ids: tokenizer.encode_prepared(&chars),
                        phonemes: chars.iter().map(char::to_string).collect(),
                        pause_after: None,
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

    fn start(&self, sentence: &Sentence, params: &VitsParams) -> Result<VitsSequence, SynthError> {
        Ok(VitsSequence {
            ids: sentence.ids.clone(),
            params: params.clone(),
        })
    }

    fn step(&self, batch: &mut [&mut VitsSequence]) -> Result<Vec<Chunk>, StepError> {
        let items: Vec<(&[i64], SynthesisParams)> = batch
            .iter()
            .map(|s| (s.ids.as_slice(), s.params.synthesis))
            .collect();
        let audios = self
            .model()
            .synthesize_batch(&items)
            .map_err(|e| classify_failure(SynthError::from(e)))?;
        audios
            .into_iter()
            .zip(batch.iter())
            .map(|(audio, sequence)| {
                let audio = self
                    .revoice(audio, &sequence.params)
                    .map_err(classify_failure)?;
                Ok(Chunk { audio, done: true })
            })
            .collect()
    }

    fn smoke_test(&self) -> Result<(), SynthError> {
        let ids = match &self.checkpoint {
            Checkpoint::Piper { voice, .. } => voice.phonemes_to_ids(&["a".to_string()]).0,
            Checkpoint::Mms { .. } => vec![0; 3],
        };
        let params = SynthesisParams {
            noise_scale: 0.0,
            noise_w: 0.0,
            ..self.synthesis_defaults()
        };
        self.model().synthesize(&ids, &params)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_take_tau_and_refuse_unknown_fields() {
        let json = serde_json::json!({
            "noise_scale": 0.5, "length_scale": 1.0, "noise_w": 0.8,
            "speaker": null, "seed": 3, "tau": 0.0,
        });
        let params: VitsParams = serde_json::from_value(json.clone()).expect("valid");
        assert_eq!(params.tau, Some(0.0));
        assert_eq!(params.synthesis.seed, Some(3));
        assert_eq!(serde_json::to_value(&params).expect("serializes"), json);
        let mut unknown = json;
        unknown["cfg_weight"] = 0.3.into();
        let err = serde_json::from_value::<VitsParams>(unknown).unwrap_err();
        assert!(err.to_string().contains("cfg_weight"), "{err}");
    }
}

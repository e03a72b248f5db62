//! Voice conversion through S3Gen alone (the reference's `vc.py`): a source
//! recording's speech tokens, spoken again in a target voice.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use vivace_frontend::resample::resample;
use vivace_frontend::speaker_audio::read_wav;
use vivace_models::chatterbox::s3gen::{FlowNoise, Prompt, S3Gen, S3GenConfig, SeededSourceNoise};

use super::reference::{ReferenceEncoder, ReferenceError, MIN_SAMPLE_RATE, TOKENIZER_RATE};

/// The checkpoint files S3Gen may be published as, in the order a folder is
/// searched.
pub const S3GEN_FILES: [&str; 3] = [
    "s3gen.safetensors",
    "s3gen.pt",
    "s3gen_meanflow.safetensors",
];
/// The built-in voice beside the checkpoint.
pub const BUILTIN_VOICE: &str = "conds.pt";
/// The longest source the tokenizer takes in one piece, in seconds.
pub const MAX_SOURCE_SECONDS: f64 = 30.0;

/// Sizes of an S3Gen that is not the published one, beside its checkpoint
/// (absent for the published checkpoints; small test models carry it).
pub const S3GEN_CONFIG_FILE: &str = "s3gen_config.json";

/// The S3Gen sizes for the checkpoint folder `dir`: its
/// [`S3GEN_CONFIG_FILE`], or the published sizes when there is none.
pub fn s3gen_config(dir: &Path) -> Result<S3GenConfig, vivace_models::Error> {
    let path = dir.join(S3GEN_CONFIG_FILE);
    if !path.is_file() {
        return Ok(S3GenConfig::chatterbox());
    }
    let text = std::fs::read_to_string(&path).map_err(|source| vivace_models::Error::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| vivace_models::Error::Config {
        path,
        reason: e.to_string(),
    })
}

/// The first of `names` that is a file in `dir`, or an error naming `what`,
/// the files looked for, and `hint` (appended as is).
pub fn find_in(
    dir: &Path,
    names: &[&str],
    what: &str,
    hint: &str,
) -> Result<PathBuf, vivace_models::Error> {
    names
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            vivace_models::Error::Unsupported(format!(
                "{}: no {what} here (looked for {}){hint}",
                dir.display(),
                names.join(", ")
            ))
        })
}

/// How the randomness of one conversion is drawn.
#[derive(Debug, Clone)]
pub struct Randomness {
    /// The flow's starting noise.
    pub flow: FlowNoise,
    /// The vocoder's sine phases and noise: seeded, or off (`None`).
    pub vocoder_seed: Option<u64>,
}

/// S3Gen with its reference front end, loaded from one checkpoint.
#[derive(Debug)]
pub struct VoiceConverter {
    s3gen: S3Gen,
    reference: ReferenceEncoder,
    checkpoint: PathBuf,
}

impl VoiceConverter {
    /// Loads S3Gen from `path`: a checkpoint file or a folder holding one
    /// of [`S3GEN_FILES`].
    pub fn load(path: &Path, device: &Device) -> Result<Self, ReferenceError> {
        let checkpoint = match path.is_dir() {
            true => find_in(path, &S3GEN_FILES, "S3Gen checkpoint", "")?,
            false => path.to_path_buf(),
        };
        let config = s3gen_config(checkpoint.parent().unwrap_or(Path::new(".")))?;
        Ok(Self {
            s3gen: S3Gen::load(&checkpoint, &config, device, DType::F32)?,
            reference: ReferenceEncoder::load(&checkpoint, &config, device)?,
            checkpoint,
        })
    }

    /// From parts loaded elsewhere (tests use small networks); `checkpoint`
    /// is where the built-in voice is looked for beside.
    pub fn from_parts(s3gen: S3Gen, reference: ReferenceEncoder, checkpoint: PathBuf) -> Self {
        Self {
            s3gen,
            reference,
            checkpoint,
        }
    }

    /// The model.
    pub fn s3gen(&self) -> &S3Gen {
        &self.s3gen
    }

    /// The target voice: a recording's prompt, or (`None`) the built-in
    /// voice `conds.pt` beside the checkpoint.
    pub fn target(&self, recording: Option<&Path>) -> Result<Prompt, ReferenceError> {
        match recording {
            Some(path) => self.reference.prompt_from_file(path),
            None => {
                let conds = self.checkpoint.with_file_name(BUILTIN_VOICE);
                Ok(Prompt::from_conds(&conds)?)
            }
        }
    }

    /// The speech tokens of the source recording (at most 30 s).
    pub fn source_tokens(&self, source: &Path) -> Result<Vec<u32>, ReferenceError> {
        let recording = read_wav(source)?;
        if recording.sample_rate < MIN_SAMPLE_RATE {
            return Err(ReferenceError::SampleRate {
                path: source.to_path_buf(),
                rate: recording.sample_rate,
            });
        }
        let seconds = recording.samples.len() as f64 / f64::from(recording.sample_rate);
        if seconds > MAX_SOURCE_SECONDS {
            return Err(vivace_models::Error::InvalidInput(format!(
                "{}: {seconds:.1} s; voice conversion takes up to {MAX_SOURCE_SECONDS} s at a time: split the recording",
                source.display()
            ))
            .into());
        }
        let wav16 = resample(&recording.samples, recording.sample_rate, TOKENIZER_RATE)?;
        if wav16.len() < 640 {
            return Err(ReferenceError::TooShort {
                path: source.to_path_buf(),
                seconds,
            });
        }
        self.reference.tokens(&wav16)
    }

    /// 24 kHz audio: `tokens` spoken in `target`'s voice in `steps` decoder
    /// steps (the checkpoint's default when `None`).
    pub fn speak(
        &self,
        tokens: &[u32],
        target: &Prompt,
        steps: Option<usize>,
        randomness: &Randomness,
    ) -> Result<Vec<f32>, ReferenceError> {
        let frames = 2 * (target.tokens.len() + tokens.len());
        let noise = randomness.flow.for_frames(frames)?;
        let steps = steps.unwrap_or(self.s3gen.default_steps());
        let mel = self
            .s3gen
            .flow(target, tokens, &noise, steps, &mut |_, _| {})?;
        let mut source_noise = randomness.vocoder_seed.map(SeededSourceNoise::new);
        let noise = source_noise
            .as_mut()
            .map(|n| n as &mut dyn vivace_models::chatterbox::s3gen::SourceNoise);
        Ok(self.s3gen.vocode(&mel, noise)?.to_vec1()?)
    }
}

//! Converting a Piper voice (`.onnx` + `.onnx.json`) to a compact voice
//! file (one `.safetensors`, f16 weights by default), and measuring what the
//! conversion costs: the same sentence spoken by both, compared sample by
//! sample.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde::Serialize;
use vivace_models::compact::{self, CompactOrigin};
use vivace_models::piper::PiperParts;
use vivace_models::vits::SynthesisParams;

use crate::synth::{SynthError, Synthesizer};
use crate::validate::{compare_on_alignment, AlignedComparison};
use crate::voice_store::{sha256_file, StoreError};

/// The sentence both voices speak to measure a conversion's fidelity.
pub const FIDELITY_TEXT: &str = "The quick brown fox jumps over the lazy dog.";

/// What can go wrong converting a voice.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The source voice or the written file could not be read or written.
    #[error(transparent)]
    Model(#[from] vivace_models::Error),
    /// The source could not be hashed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The fidelity check could not synthesize.
    #[error("fidelity check: {0}")]
    Synth(#[from] SynthError),
    /// The source is already a compact voice.
    #[error("{0} is already a compact voice: convert the Piper .onnx it came from")]
    AlreadyCompact(PathBuf),
    /// The output would replace an existing file.
    #[error("{0} exists: pass --force to replace it, or choose another --output")]
    Exists(PathBuf),
    /// The output path does not end in `.safetensors`.
    #[error("{0}: a compact voice's file name must end in .safetensors (that is how Vivace recognises it)")]
    BadExtension(PathBuf),
}

/// The default output path: `NAME.safetensors` beside `NAME.onnx`.
pub fn default_output(source: &Path) -> PathBuf {
    source.with_extension(compact::EXTENSION)
}

/// What a conversion produced.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    /// The `.onnx` converted.
    pub source: PathBuf,
    /// Its size in bytes.
    pub source_bytes: u64,
    /// The compact file written.
    pub output: PathBuf,
    /// Its size in bytes.
    pub output_bytes: u64,
    /// The dtype the weights are stored in.
    pub stored_dtype: &'static str,
    /// The measured cost of the conversion, when checked.
    pub fidelity: Option<Fidelity>,
}

/// The same sentence spoken by the source and the converted voice on the
/// CPU in f32, noise off, compared on the source's alignment.
#[derive(Debug, Clone, Serialize)]
pub struct Fidelity {
    /// What was spoken.
    pub text: &'static str,
    /// The comparison.
    #[serde(flatten)]
    pub comparison: AlignedComparison,
}

/// Converts the Piper voice at `source` to a compact file at `out` with
/// weights stored in `dtype`. Refuses to replace an existing file unless
/// `force`.
pub fn convert(
    source: &Path,
    out: &Path,
    dtype: DType,
    force: bool,
) -> Result<ConvertReport, ConvertError> {
    if compact::is_compact_path(source) {
        return Err(ConvertError::AlreadyCompact(source.to_path_buf()));
    }
    if !compact::is_compact_path(out) {
        return Err(ConvertError::BadExtension(out.to_path_buf()));
    }
    if out.exists() && !force {
        return Err(ConvertError::Exists(out.to_path_buf()));
    }
    let parts = PiperParts::read_onnx(source, &Device::Cpu, DType::F32)?;
    let origin = CompactOrigin {
        source: source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source_sha256: sha256_file(source)?,
        stored_dtype: dtype,
    };
    let output_bytes = compact::write(&parts, &origin, out)?;
    let source_bytes = std::fs::metadata(source)
        .map_err(|e| vivace_models::Error::Io {
            path: source.to_path_buf(),
            source: e,
        })?
        .len();
    Ok(ConvertReport {
        source: source.to_path_buf(),
        source_bytes,
        output: out.to_path_buf(),
        output_bytes,
        stored_dtype: dtype.as_str(),
        fidelity: None,
    })
}

/// Speaks [`FIDELITY_TEXT`] with both voices (CPU, f32, noise off) and
/// compares the waveforms on the source's durations.
pub fn fidelity(
    source: &Path,
    converted: &Path,
    espeak_data: &Path,
) -> Result<Fidelity, ConvertError> {
    let load = |path: &Path| Synthesizer::load(path, &Device::Cpu, DType::F32, espeak_data);
    let (original, compacted) = (load(source)?, load(converted)?);
    let ids: Vec<i64> = original
        .sentences(FIDELITY_TEXT)?
        .into_iter()
        .flat_map(|s| s.ids)
        .collect();
    let (original, compacted) = (original.vits()?, compacted.vits()?);
    let params = SynthesisParams {
        noise_scale: 0.0,
        noise_w: 0.0,
        ..original.synthesis_defaults()
    };
    let comparison = compare_on_alignment(original.model(), compacted.model(), &ids, &params)
        .map_err(SynthError::from)?;
    Ok(Fidelity {
        text: FIDELITY_TEXT,
        comparison,
    })
}

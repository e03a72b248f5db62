//! Compact voices: a Piper voice converted to one safetensors file.
//!
//! A Piper voice is two files, and its `.onnx` stores every weight in f32
//! (60 MiB for a medium voice) plus a graph Vivace never runs. A compact voice
//! is one `.safetensors` file: the weights under the model's parameter names,
//! in f16 by default (half the size), with the voice's `.onnx.json` text and
//! the architecture read off the ONNX kept in the safetensors metadata. Any
//! safetensors reader can open it; Vivace loads it like the `.onnx`.
//!
//! Metadata keys: `vivace.format` (`piper-voice`), `vivace.format_version`
//! (`1`), `vivace.architecture` (the [`VitsConfig`] as JSON), `piper.config`
//! (the `.onnx.json` verbatim), `vivace.source` (the `.onnx` file name),
//! `vivace.source_sha256` and `vivace.stored_dtype`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::error::{Error, Result};
use crate::piper::{check_config_matches, PiperConfig, PiperParts};
use crate::vits::VitsConfig;

/// The file extension of a compact voice.
pub const EXTENSION: &str = "safetensors";
/// `vivace.format` of a compact Piper voice.
pub const FORMAT: &str = "piper-voice";
/// `vivace.format_version` this code writes and reads.
pub const FORMAT_VERSION: &str = "1";

const KEY_FORMAT: &str = "vivace.format";
const KEY_VERSION: &str = "vivace.format_version";
const KEY_ARCHITECTURE: &str = "vivace.architecture";
const KEY_CONFIG: &str = "piper.config";
const KEY_SOURCE: &str = "vivace.source";
const KEY_SOURCE_SHA256: &str = "vivace.source_sha256";
const KEY_DTYPE: &str = "vivace.stored_dtype";

/// Largest finite f16 value: weights beyond it cannot be stored in f16.
const F16_MAX: f32 = 65504.0;

/// What a compact file says about where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOrigin {
    /// File name of the `.onnx` it was converted from.
    pub source: String,
    /// sha256 of that `.onnx`, to recognise a known voice.
    pub source_sha256: String,
    /// The dtype its weights are stored in.
    pub stored_dtype: DType,
}

/// Whether `path` names a compact voice (by its extension).
pub fn is_compact_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == EXTENSION)
}

/// The dtypes a compact voice may store its weights in. Not bf16: its 8-bit
/// mantissa moves the default voice's "Hello world." by 36 % (relative L2);
/// f16 moves Piper's golden sentences by 1.6 % (median; worst 3.75 %), see
/// `docs/PERFORMANCE.md`.
pub fn storable(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16)
}

/// Writes `parts` to `out` with weights in `dtype` (f16 or f32),
/// recording `origin`. The file appears whole or not at all: it is written
/// beside `out` and renamed into place. Returns the file's size in bytes.
pub fn write(parts: &PiperParts, origin: &CompactOrigin, out: &Path) -> Result<u64> {
    let dtype = origin.stored_dtype;
    if !storable(dtype) {
        return Err(Error::InvalidInput(format!(
            "a compact voice stores f16 or f32 weights, not {}",
            dtype.as_str()
        )));
    }
    let mut tensors = Vec::with_capacity(parts.tensors.len());
    for (name, t) in &parts.tensors {
        let t = t.to_device(&Device::Cpu)?;
        if dtype == DType::F16 {
            let largest = t
                .to_dtype(DType::F32)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            if largest > F16_MAX {
                return Err(Error::InvalidInput(format!(
                    "{}: weight `{name}` holds {largest}, beyond f16's range: convert with --dtype f32",
                    parts.path.display()
                )));
            }
        }
        tensors.push((name.clone(), t.to_dtype(dtype)?));
    }
    let architecture = serde_json::to_string(&parts.architecture)
        .map_err(|e| Error::Unsupported(format!("cannot serialize the architecture: {e}")))?;
    let metadata: HashMap<String, String> = [
        (KEY_FORMAT, FORMAT.to_string()),
        (KEY_VERSION, FORMAT_VERSION.to_string()),
        (KEY_ARCHITECTURE, architecture),
        (KEY_CONFIG, parts.config_json.clone()),
        (KEY_SOURCE, origin.source.clone()),
        (KEY_SOURCE_SHA256, origin.source_sha256.clone()),
        (KEY_DTYPE, dtype.as_str().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let partial = partial_path(out);
    let io = |source| Error::Io {
        path: out.to_path_buf(),
        source,
    };
    // Serialized in memory (a voice is tens of MB) and written with the
    // usual permissions: safetensors' own file writer makes owner-only files.
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    std::fs::write(&partial, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        io(e)
    })?;
    std::fs::rename(&partial, out).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        io(e)
    })?;
    Ok(std::fs::metadata(out).map_err(io)?.len())
}

/// Reads a compact voice onto `device`, its weights in their stored dtype
/// (the model converts them when it is built).
pub fn read(path: &Path, device: &Device) -> Result<(PiperParts, CompactOrigin)> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = Meta::parse(path, &data)?;
    let tensors = candle_core::safetensors::load_buffer(&data, device).map_err(|e| {
        meta.bad(format!(
            "its tensors cannot be read ({e}): the file may be truncated; convert the .onnx again"
        ))
    })?;
    let config = PiperConfig::parse(&meta.config_json, path)?;
    check_config_matches(&config, path, &meta.architecture)?;
    let parts = PiperParts {
        config,
        config_json: meta.config_json,
        architecture: meta.architecture,
        tensors,
        path: path.to_path_buf(),
    };
    Ok((parts, meta.origin))
}

/// Reads only a compact voice's config and origin (its header), not its weights.
pub fn read_header(path: &Path) -> Result<(PiperConfig, CompactOrigin)> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io)?;
    let header_len = u64::from_le_bytes(len);
    // safetensors caps headers at 100 MB; a compact voice's is a few KiB.
    if header_len > 100_000_000 {
        return Err(not_compact(path, "its header length is implausible"));
    }
    let mut head = len.to_vec();
    file.take(header_len).read_to_end(&mut head).map_err(io)?;
    let meta = Meta::parse_header(path, &head)?;
    let config = PiperConfig::parse(&meta.config_json, path)?;
    Ok((config, meta.origin))
}

/// The metadata of a compact file, checked.
struct Meta {
    path: PathBuf,
    architecture: VitsConfig,
    config_json: String,
    origin: CompactOrigin,
}

impl Meta {
    fn bad(&self, reason: String) -> Error {
        not_compact(&self.path, &reason)
    }

    /// Parses the metadata of a whole file.
    fn parse(path: &Path, data: &[u8]) -> Result<Self> {
        let (_, metadata) = safetensors::SafeTensors::read_metadata(data).map_err(|e| {
            not_compact(
                path,
                &format!("not a complete safetensors file ({e}): it may be truncated"),
            )
        })?;
        Self::from_map(path, metadata.metadata().as_ref())
    }

    /// Parses the metadata from the length prefix and JSON header alone.
    fn parse_header(path: &Path, head: &[u8]) -> Result<Self> {
        let json = head
            .get(8..)
            .ok_or_else(|| not_compact(path, "it is shorter than a safetensors header"))?;
        let header: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| not_compact(path, &format!("not a safetensors file ({e})")))?;
        let map: Option<HashMap<String, String>> = header
            .get("__metadata__")
            .and_then(|m| serde_json::from_value(m.clone()).ok());
        Self::from_map(path, map.as_ref())
    }

    fn from_map(path: &Path, map: Option<&HashMap<String, String>>) -> Result<Self> {
        let get = |key: &str| -> Result<&String> {
            map.and_then(|m| m.get(key)).ok_or_else(|| {
                not_compact(
                    path,
                    &format!(
                        "its metadata has no `{key}`: convert a Piper voice with `vivace convert VOICE.onnx`, or give a Hugging Face checkpoint as its directory"
                    ),
                )
            })
        };
        let format = get(KEY_FORMAT)?;
        if format != FORMAT {
            return Err(not_compact(
                path,
                &format!("its format is `{format}`, not `{FORMAT}`"),
            ));
        }
        let version = get(KEY_VERSION)?;
        if version != FORMAT_VERSION {
            return Err(not_compact(
                path,
                &format!(
                    "format version {version}; this Vivace reads version {FORMAT_VERSION}: convert the .onnx again"
                ),
            ));
        }
        let architecture: VitsConfig = serde_json::from_str(get(KEY_ARCHITECTURE)?)
            .map_err(|e| not_compact(path, &format!("its architecture is unreadable ({e})")))?;
        let stored = get(KEY_DTYPE)?;
        let stored_dtype = stored
            .parse::<DType>()
            .ok()
            .filter(|d| d.is_float())
            .ok_or_else(|| not_compact(path, &format!("unknown stored dtype `{stored}`")))?;
        Ok(Self {
            path: path.to_path_buf(),
            architecture,
            config_json: get(KEY_CONFIG)?.clone(),
            origin: CompactOrigin {
                source: get(KEY_SOURCE)?.clone(),
                source_sha256: get(KEY_SOURCE_SHA256)?.clone(),
                stored_dtype,
            },
        })
    }
}

fn not_compact(path: &Path, reason: &str) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        reason: format!("not a usable compact voice: {reason}"),
    }
}

/// `out` with `.partial` appended: where [`write`] writes before renaming.
fn partial_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn only_f16_and_f32_are_storable() {
        assert!(storable(DType::F16) && storable(DType::F32));
        assert!(!storable(DType::F64) && !storable(DType::BF16) && !storable(DType::U8));
    }

    #[test]
    fn a_plain_safetensors_file_is_refused_by_name() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Unsupported(e.to_string()))?;
        let path = dir.path().join("model.safetensors");
        let t = Tensor::zeros((2, 2), DType::F32, &Device::Cpu)?;
        candle_core::safetensors::save(&HashMap::from([("w".to_string(), t)]), &path)?;
        for err in [
            read(&path, &Device::Cpu).map(|_| ()).unwrap_err(),
            read_header(&path).map(|_| ()).unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(
                msg.contains("model.safetensors") && msg.contains("vivace convert"),
                "{msg}"
            );
        }
        Ok(())
    }
}

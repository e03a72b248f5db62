//! Reading PyTorch's legacy checkpoint format: what `torch.save` wrote before
//! PyTorch 1.6 (and still writes with `_use_new_zipfile_serialization=False`),
//! e.g. resemblyzer's `pretrained.pt`. candle reads the newer zip format only.
//!
//! The file is five pickles back to back, then the raw storages:
//! 1. the magic number `0x1950a86a20f9469cfc6c`;
//! 2. the protocol version (1001);
//! 3. system information (`little_endian`, type sizes);
//! 4. the object itself, in which every tensor is `_rebuild_tensor_v2(storage,
//!    offset, size, stride, …)` and every storage a persistent id
//!    `('storage', <dtype>Storage, key, location, numel, view_metadata)`;
//! 5. the list of storage keys in the order their data follows;
//!
//! then, for each key, its element count (u64, little-endian) and the
//! elements. Pickles 2–5 are read with `candle_core::pickle`'s stack machine;
//! tensors are gathered from their storage by offset and strides, so views
//! (a transpose sharing its storage) come out right.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// The pickled magic number that opens a legacy file (`LONG1`, 10 bytes).
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A storage: its dtype and raw little-endian bytes.
struct Storage {
    dtype: DType,
    bytes: Vec<u8>,
}

/// A legacy checkpoint, read whole: the object tree and the storages.
pub struct LegacyCheckpoint {
    path: PathBuf,
    object: Object,
    storages: HashMap<String, Storage>,
}

impl std::fmt::Debug for LegacyCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyCheckpoint")
            .field("path", &self.path)
            .field("storages", &self.storages.len())
            .finish()
    }
}

impl LegacyCheckpoint {
    /// Reads `path`; an error names the file and what is wrong with it.
    pub fn read(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| Error::Unsupported(format!("{}: {reason}", path.display()));
        let mut r = BufReader::new(file);
        read_magic(&mut r).map_err(&bad)?;
        let protocol = read_pickle(&mut r).map_err(|e| bad(format!("protocol version: {e}")))?;
        if protocol != Object::Int(1001) && protocol != Object::Long(1001) {
            return Err(bad(format!("unknown protocol version {protocol:?}")));
        }
        let sys_info = read_pickle(&mut r).map_err(|e| bad(format!("system info: {e}")))?;
        if let Object::Dict(entries) = &sys_info {
            let big_endian = entries.iter().any(|(k, v)| {
                *k == Object::Unicode("little_endian".into()) && *v == Object::Bool(false)
            });
            if big_endian {
                return Err(bad("written on a big-endian machine; not supported".into()));
            }
        }
        let object = read_pickle(&mut r).map_err(|e| bad(format!("main object: {e}")))?;
        let keys = read_pickle(&mut r).map_err(|e| bad(format!("storage keys: {e}")))?;
        let keys: Vec<String> = match keys {
            Object::List(keys) => keys
                .into_iter()
                .map(|k| String::try_from(k).map_err(|k| bad(format!("storage key {k:?}"))))
                .collect::<Result<_>>()?,
            other => return Err(bad(format!("storage keys are not a list: {other:?}"))),
        };
        let mut dtypes = HashMap::new();
        collect_storage_dtypes(&object, &mut dtypes).map_err(&bad)?;
        let mut storages = HashMap::new();
        for key in keys {
            let dtype = *dtypes
                .get(&key)
                .ok_or_else(|| bad(format!("storage {key} is not used by any tensor")))?;
            let mut count = [0u8; 8];
            r.read_exact(&mut count)
                .map_err(|e| bad(format!("storage {key}: truncated ({e})")))?;
            let count = u64::from_le_bytes(count) as usize;
            let len = count
                .checked_mul(dtype.size_in_bytes())
                .ok_or_else(|| bad(format!("storage {key}: impossible size")))?;
            let mut bytes = vec![0u8; len];
            r.read_exact(&mut bytes)
                .map_err(|e| bad(format!("storage {key}: truncated ({e})")))?;
            storages.insert(key, Storage { dtype, bytes });
        }
        Ok(Self {
            path: path.to_path_buf(),
            object,
            storages,
        })
    }

    /// The tensors of the state dict at `key` of the top-level dict (for
    /// example `model_state`), or of the top level itself, with their names,
    /// sorted by name (candle's pickle reader does not keep dict order), on
    /// `device`. Entries that are not tensors are skipped.
    pub fn tensors(&self, key: Option<&str>, device: &Device) -> Result<Vec<(String, Tensor)>> {
        let bad = |reason: String| Error::Unsupported(format!("{}: {reason}", self.path.display()));
        let dict = match key {
            None => &self.object,
            Some(key) => dict_entries(&self.object)
                .and_then(|entries| {
                    entries
                        .iter()
                        .find(|(k, _)| *k == Object::Unicode(key.into()))
                        .map(|(_, v)| v)
                })
                .ok_or_else(|| bad(format!("no entry {key:?} in the checkpoint")))?,
        };
        let entries = dict_entries(dict).ok_or_else(|| bad("not a dict of tensors".into()))?;
        let mut out = Vec::new();
        for (name, value) in entries {
            let Object::Unicode(name) = name else {
                continue;
            };
            if let Some(tensor) = self
                .tensor(value, device)
                .map_err(|e| bad(format!("{name}: {e}")))?
            {
                out.push((name.clone(), tensor));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Rebuilds one `_rebuild_tensor_v2` (or `_rebuild_parameter`) object;
    /// `None` when the object is not a tensor.
    fn tensor(
        &self,
        value: &Object,
        device: &Device,
    ) -> std::result::Result<Option<Tensor>, String> {
        let Some((callable, args)) = as_reduce(value) else {
            return Ok(None);
        };
        let (callable, args) = match class_name(callable) {
            Some(("torch._utils", "_rebuild_parameter")) => {
                let Object::Tuple(args) = args else {
                    return Err("parameter without arguments".into());
                };
                match args.first().and_then(as_reduce) {
                    Some(inner) => inner,
                    None => return Ok(None),
                }
            }
            _ => (callable, args),
        };
        if class_name(callable) != Some(("torch._utils", "_rebuild_tensor_v2")) {
            return Ok(None);
        }
        let Object::Tuple(args) = args else {
            return Err("tensor without arguments".into());
        };
        let [storage, offset, size, stride, ..] = args.as_slice() else {
            return Err("tensor with too few arguments".into());
        };
        let (key, _) = storage_ref(storage)?;
        let storage = self
            .storages
            .get(&key)
            .ok_or_else(|| format!("storage {key} is missing"))?;
        let offset = as_usize(offset).ok_or("bad storage offset")?;
        let size = as_usizes(size).ok_or("bad size")?;
        let stride = as_usizes(stride).ok_or("bad stride")?;
        if size.len() != stride.len() {
            return Err("size and stride disagree".into());
        }
        let elem = storage.dtype.size_in_bytes();
        let numel: usize = size.iter().product();
        let mut bytes = Vec::with_capacity(numel * elem);
        let mut index = vec![0usize; size.len()];
        for _ in 0..numel {
            let at = offset + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
            let chunk = storage
                .bytes
                .get(at * elem..(at + 1) * elem)
                .ok_or("a view reaches past its storage")?;
            bytes.extend_from_slice(chunk);
            // Advance the multi-index, last dimension fastest.
            for d in (0..size.len()).rev() {
                index[d] += 1;
                if index[d] < size[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Tensor::from_raw_buffer(&bytes, storage.dtype, &size, device)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Reads the magic-number pickle: `PROTO n`, `LONG1 10 <magic>`, `STOP`.
fn read_magic<R: Read>(r: &mut R) -> std::result::Result<(), String> {
    let mut head = [0u8; 15];
    r.read_exact(&mut head)
        .map_err(|_| "too short to be a PyTorch checkpoint".to_string())?;
    let ok = head[0] == 0x80
        && head[2] == 0x8a
        && head[3] == 10
        && head[4..14] == MAGIC
        && head[14] == b'.';
    if ok {
        Ok(())
    } else if head.starts_with(b"PK") {
        Err("a zip-format PyTorch checkpoint (PyTorch ≥ 1.6), not the legacy format".into())
    } else {
        Err("not a legacy PyTorch checkpoint (no magic number)".into())
    }
}

/// One pickle, up to its STOP.
fn read_pickle<R: BufRead>(r: &mut R) -> std::result::Result<Object, String> {
    let mut stack = Stack::empty();
    stack.read_loop(r).map_err(|e| e.to_string())?;
    stack.finalize().map_err(|e| e.to_string())
}

/// The entries of a dict (an `OrderedDict` reads as a dict too).
fn dict_entries(obj: &Object) -> Option<&Vec<(Object, Object)>> {
    match obj {
        Object::Dict(entries) => Some(entries),
        _ => None,
    }
}

fn as_reduce(obj: &Object) -> Option<(&Object, &Object)> {
    match obj {
        Object::Reduce { callable, args } => Some((callable, args)),
        _ => None,
    }
}

fn class_name(obj: &Object) -> Option<(&str, &str)> {
    match obj {
        Object::Class {
            module_name,
            class_name,
        } => Some((module_name.as_str(), class_name.as_str())),
        _ => None,
    }
}

fn as_usize(obj: &Object) -> Option<usize> {
    match obj {
        Object::Int(v) => usize::try_from(*v).ok(),
        Object::Long(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn as_usizes(obj: &Object) -> Option<Vec<usize>> {
    match obj {
        Object::Tuple(items) | Object::List(items) => items.iter().map(as_usize).collect(),
        _ => None,
    }
}

/// `('storage', <dtype>Storage, key, location, numel, …)` → key and dtype.
fn storage_ref(obj: &Object) -> std::result::Result<(String, DType), String> {
    let Object::PersistentLoad(id) = obj else {
        return Err("tensor without a storage".into());
    };
    let Object::Tuple(parts) = id.as_ref() else {
        return Err("malformed storage reference".into());
    };
    let [Object::Unicode(kind), class, Object::Unicode(key), ..] = parts.as_slice() else {
        return Err("malformed storage reference".into());
    };
    if kind != "storage" {
        return Err(format!("unknown persistent object {kind:?}"));
    }
    let dtype = match class_name(class) {
        Some((_, "FloatStorage")) => DType::F32,
        Some((_, "DoubleStorage")) => DType::F64,
        Some((_, "HalfStorage")) => DType::F16,
        Some((_, "BFloat16Storage")) => DType::BF16,
        Some((_, "LongStorage")) => DType::I64,
        Some((_, "ByteStorage")) => DType::U8,
        Some((_, other)) => return Err(format!("storage type {other} is not supported")),
        None => return Err("malformed storage type".into()),
    };
    Ok((key.clone(), dtype))
}

/// Every storage the object refers to, with its dtype.
fn collect_storage_dtypes(
    obj: &Object,
    out: &mut HashMap<String, DType>,
) -> std::result::Result<(), String> {
    match obj {
        Object::PersistentLoad(_) => {
            let (key, dtype) = storage_ref(obj)?;
            out.insert(key, dtype);
        }
        Object::Tuple(items) | Object::List(items) => {
            for item in items {
                collect_storage_dtypes(item, out)?;
            }
        }
        Object::Dict(entries) => {
            for (k, v) in entries {
                collect_storage_dtypes(k, out)?;
                collect_storage_dtypes(v, out)?;
            }
        }
        Object::Reduce { callable, args } | Object::Build { callable, args } => {
            collect_storage_dtypes(callable, out)?;
            collect_storage_dtypes(args, out)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    /// Against the values PyTorch saved (`tools/make_torch_legacy_fixture.py`).
    #[test]
    fn reads_tensors_views_and_dtypes_as_pytorch_saved_them() -> Result<()> {
        let ckpt = LegacyCheckpoint::read(&fixtures().join("legacy.pt"))?;
        let tensors = ckpt.tensors(Some("model_state"), &Device::Cpu)?;
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("legacy.json")).expect("legacy.json"),
        )
        .expect("parse legacy.json");
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "counts",
                "linear.weight",
                "linear.weight_t",
                "lstm.weight_ih_l0",
                "scale",
                "tail"
            ]
        );
        for (name, tensor) in &tensors {
            let want = &expected[name];
            let shape: Vec<usize> = want["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|v| v.as_u64().expect("dim") as usize)
                .collect();
            assert_eq!(tensor.dims(), shape.as_slice(), "{name}");
            let got = tensor
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?;
            let values: Vec<f64> = want["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect();
            assert_eq!(got.len(), values.len(), "{name}");
            for (g, w) in got.iter().zip(&values) {
                assert!((g - w).abs() < 1e-6, "{name}: {g} vs {w}");
            }
        }
        assert_eq!(tensors[0].1.dtype(), DType::I64);
        Ok(())
    }

    /// resemblyzer 0.1.4's `pretrained.pt` (from its PyPI wheel):
    /// `VIVACE_RESEMBLYZER_PT=…/pretrained.pt cargo test -p vivace-models
    /// resemblyzer -- --ignored`.
    #[test]
    #[ignore = "needs resemblyzer's pretrained.pt (VIVACE_RESEMBLYZER_PT)"]
    fn reads_resemblyzer_pretrained_weights() -> Result<()> {
        let path = std::env::var_os("VIVACE_RESEMBLYZER_PT").expect("VIVACE_RESEMBLYZER_PT");
        let ckpt = LegacyCheckpoint::read(Path::new(&path))?;
        let tensors: HashMap<String, Tensor> = ckpt
            .tensors(Some("model_state"), &Device::Cpu)?
            .into_iter()
            .collect();
        for (name, shape) in [
            ("lstm.weight_ih_l0", vec![1024, 40]),
            ("lstm.weight_hh_l0", vec![1024, 256]),
            ("lstm.bias_ih_l2", vec![1024]),
            ("lstm.weight_ih_l2", vec![1024, 256]),
            ("linear.weight", vec![256, 256]),
            ("linear.bias", vec![256]),
        ] {
            assert_eq!(tensors[name].dims(), shape.as_slice(), "{name}");
        }
        Ok(())
    }

    #[test]
    fn wrong_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let zip = dir.path().join("zip.pt");
        std::fs::write(&zip, b"PK\x03\x04 a zip archive, long enough").expect("write");
        let err = LegacyCheckpoint::read(&zip).expect_err("zip").to_string();
        assert!(err.contains("zip-format"), "{err}");
        let short = dir.path().join("short.pt");
        std::fs::write(&short, b"\x80\x02").expect("write");
        assert!(LegacyCheckpoint::read(&short).is_err());
        // A real file cut short inside its storages.
        let bytes = std::fs::read(fixtures().join("legacy.pt")).expect("fixture");
        let cut = dir.path().join("cut.pt");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("write");
        let err = LegacyCheckpoint::read(&cut)
            .expect_err("truncated")
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let ckpt = LegacyCheckpoint::read(&fixtures().join("legacy.pt")).expect("fixture");
        let err = ckpt
            .tensors(Some("nope"), &Device::Cpu)
            .expect_err("no key")
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}

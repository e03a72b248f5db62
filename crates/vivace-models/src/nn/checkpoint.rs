//! Reading a PyTorch model's weights as they are published: a safetensors
//! file or a `torch.save` zip, tensor names unchanged, weight norm folded.
//!
//! A model loads through a [`VarBuilder`] over [`Checkpoint::var_builder`]
//! and asks for `….weight` whether the file stores it plain or weight-normed
//! (`weight_g`/`weight_v`, or `parametrizations.weight.original0/1` as newer
//! PyTorch saves it).

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::{Error, Result};

/// Where a checkpoint's tensors come from.
enum Store {
    Safetensors(MmapedSafetensors),
    Torch(candle_core::pickle::PthTensors),
}

/// One checkpoint file, opened.
pub struct Checkpoint {
    path: PathBuf,
    store: Store,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .finish()
    }
}

impl Checkpoint {
    /// Opens `path`: `.safetensors` by memory map, anything else as a
    /// `torch.save` zip (the state dict at its top, or under `key`).
    pub fn open(path: &Path, key: Option<&str>) -> Result<Self> {
        let unreadable = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason: format!("not a readable checkpoint: {reason}"),
        };
        if !path.is_file() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let store = if path.extension().is_some_and(|e| e == "safetensors") {
            // SAFETY: the file is mapped read-only; like every model loader we
            // assume it is not truncated or rewritten while the model lives.
            let st =
                unsafe { MmapedSafetensors::new(path) }.map_err(|e| unreadable(e.to_string()))?;
            Store::Safetensors(st)
        } else {
            let pth = candle_core::pickle::PthTensors::new(path, key)
                .map_err(|e| unreadable(e.to_string()))?;
            Store::Torch(pth)
        };
        Ok(Self {
            path: path.to_path_buf(),
            store,
        })
    }

    /// Opens `path` and builds a network from its tensors under `prefix`
    /// (empty: the root) in `dtype` on `device`; a `torch.save` zip's state
    /// dict is at its top, or under `key`. A file that does not fit is an
    /// error naming it, `what` it should hold, and the first tensor that
    /// does not fit.
    pub fn build<T>(
        path: &Path,
        key: Option<&str>,
        prefix: &str,
        dtype: DType,
        device: &Device,
        what: &str,
        network: impl FnOnce(VarBuilder) -> candle_core::Result<T>,
    ) -> Result<T> {
        let vb = Self::open(path, key)?.var_builder(dtype, device);
        let vb = match prefix {
            "" => vb,
            prefix => vb.pp(prefix),
        };
        network(vb).map_err(|e| {
            Error::Unsupported(format!(
                "{} has no {what} of the expected sizes: {e}",
                path.display()
            ))
        })
    }

    /// The file this checkpoint was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor stored under `name`, if any.
    pub fn get(&self, name: &str, device: &Device) -> candle_core::Result<Option<Tensor>> {
        match &self.store {
            Store::Safetensors(st) => match st.get(name) {
                Ok(_) => st.load(name, device).map(Some),
                Err(_) => Ok(None),
            },
            Store::Torch(pth) => Ok(pth.get(name)?.map(|t| t.to_device(device)).transpose()?),
        }
    }

    /// The shape of the tensor stored under `name`, read from the file's
    /// index without loading its values.
    pub fn dims(&self, name: &str) -> Option<Vec<usize>> {
        match &self.store {
            Store::Safetensors(st) => st.get(name).ok().map(|view| view.shape().to_vec()),
            Store::Torch(pth) => pth
                .tensor_infos()
                .get(name)
                .map(|info| info.layout.dims().to_vec()),
        }
    }

    /// A [`VarBuilder`] over this checkpoint's tensors in `dtype` on
    /// `device`, with weight norm folded.
    pub fn var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }

    /// `name`, or its weight-normed parts folded into it.
    pub fn tensor(&self, name: &str, device: &Device) -> candle_core::Result<Tensor> {
        if let Some(t) = self.get(name, device)? {
            return Ok(t);
        }
        if let Some(base) = name.strip_suffix(".weight") {
            for (g, v) in &weight_norm_names(base) {
                if let (Some(g), Some(v)) = (self.get(g, device)?, self.get(v, device)?) {
                    return fold_weight_norm(&g, &v);
                }
            }
        }
        candle_core::bail!("tensor {name} is missing")
    }
}

impl SimpleBackend for Checkpoint {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.tensor(name, dev)?;
        if t.dims() != s.dims() {
            candle_core::bail!(
                "tensor {name} has shape {:?}, the architecture expects {:?}",
                t.dims(),
                s.dims()
            );
        }
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.tensor(name, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}

impl Checkpoint {
    /// Whether `name` is stored, plain or weight-normed.
    pub fn contains(&self, name: &str) -> bool {
        let has = |n: &str| match &self.store {
            Store::Safetensors(st) => st.get(n).is_ok(),
            Store::Torch(pth) => pth.tensor_infos().contains_key(n),
        };
        has(name)
            || name.strip_suffix(".weight").is_some_and(|base| {
                weight_norm_names(base)
                    .iter()
                    .any(|(g, v)| has(g) && has(v))
            })
    }
}

/// `g · v / ‖v‖`, the norm taken over every dimension but the first
/// (PyTorch's `weight_norm` with `dim = 0`), computed in f32.
fn fold_weight_norm(g: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
    let v = v.to_dtype(DType::F32)?;
    let out = v.dim(0)?;
    let flat = v.reshape((out, ()))?;
    let norm = flat.sqr()?.sum_keepdim(1)?.sqrt()?;
    let g = g.to_dtype(DType::F32)?.reshape((out, 1))?;
    flat.broadcast_mul(&g.broadcast_div(&norm)?)?
        .reshape(v.shape())
}

/// The `(g, v)` names under which a weight-normed `{base}.weight` may be
/// stored: older checkpoints' and newer PyTorch's (`parametrizations`).
fn weight_norm_names(base: &str) -> [(String, String); 2] {
    [
        (format!("{base}.weight_g"), format!("{base}.weight_v")),
        (
            format!("{base}.parametrizations.weight.original0"),
            format!("{base}.parametrizations.weight.original1"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_norm_folds_like_pytorch() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // v rows (3, 4) and (0, 5): norms 5 and 5; g = 10 and -1.
        let v = Tensor::new(&[[[3f32], [4.]], [[0.], [5.]]], &dev)?;
        let g = Tensor::new(&[[[10f32]], [[-1.]]], &dev)?;
        let w = fold_weight_norm(&g, &v)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(w, vec![6.0, 8.0, 0.0, -1.0]);
        Ok(())
    }
}

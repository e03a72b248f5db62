//! Weights of exactly the shapes a loader asks for, with random values: a
//! model at its published size where the published file cannot be had
//! (a GPU machine without network access), for timing only. Speed depends
//! on shapes, not values; the output means nothing.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

/// A [`SimpleBackend`] that makes each tensor as it is asked for: normal
/// values of a small spread (so norms and softmaxes stay finite), in the
/// requested dtype, on the requested device. Tensors a loader reads without
/// a shape (`get_unchecked`) need theirs given with [`RandomWeights::with_shape`].
#[derive(Debug, Clone, Default)]
pub struct RandomWeights {
    unchecked: HashMap<String, Vec<usize>>,
}

/// Standard deviation of every value (GPT-2's and Llama's initializer).
const SPREAD: f32 = 0.02;

impl RandomWeights {
    /// A backend with no shapes for unchecked reads.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shape of `name` (its full path) for a loader that reads it
    /// without one.
    pub fn with_shape(mut self, name: &str, dims: &[usize]) -> Self {
        self.unchecked.insert(name.to_string(), dims.to_vec());
        self
    }

    /// A [`VarBuilder`] over these weights.
    pub fn var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }
}

impl SimpleBackend for RandomWeights {
    fn get(&self, s: Shape, _: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        Tensor::randn(0f32, SPREAD, s, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        match self.unchecked.get(name) {
            Some(dims) => self.get(dims.as_slice().into(), name, Init::Const(0.), dtype, dev),
            None => candle_core::bail!(
                "random weights: no shape given for {name}, which the loader reads without one"
            ),
        }
    }

    fn contains_tensor(&self, _: &str) -> bool {
        // Every tensor a loader asks for with a shape is made then.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_have_the_asked_shape_dtype_and_a_small_spread() -> Result<()> {
        let vb = RandomWeights::new()
            .with_shape("p.query", &[1, 3, 4])
            .var_builder(DType::F64, &Device::Cpu);
        let w = vb.pp("layer").get((64, 32), "weight")?;
        assert_eq!((w.dims(), w.dtype()), (&[64, 32][..], DType::F64));
        let std = w.sqr()?.mean_all()?.sqrt()?.to_scalar::<f64>()?;
        assert!((0.01..0.03).contains(&std), "spread {std}");
        assert_eq!(vb.pp("p").get_unchecked("query")?.dims(), &[1, 3, 4]);
        let err = vb
            .get_unchecked("other")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no shape given for other"), "{err}");
        Ok(())
    }
}

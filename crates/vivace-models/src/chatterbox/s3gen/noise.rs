//! S3Gen's two sources of randomness, seedable: the flow's starting noise
//! and the vocoder's sine phases and noise. A parity run injects the first
//! (`.npy` from the reference) and switches the second off.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::hift::{SourceNoise, HARMONICS};
use super::MEL_CHANNELS;
use crate::nn::sampling::{gaussian, SeededSource, UniformSource};
use crate::{Error, Result};

/// Where the flow's starting noise comes from.
#[derive(Debug, Clone)]
pub enum FlowNoise {
    /// Standard normal from a seeded generator.
    Seeded(u64),
    /// Given values `[80, ≥ frames]`, used from their first frame.
    Given(Tensor),
}

impl FlowNoise {
    /// Reads `[80, frames]` float32 noise from a `.npy` file.
    pub fn from_npy(path: &Path) -> Result<Self> {
        let array = crate::npy::read_f32(path)?;
        match array.shape.as_slice() {
            &[MEL_CHANNELS, frames] if frames > 0 => Ok(Self::Given(Tensor::from_vec(
                array.values,
                (MEL_CHANNELS, frames),
                &Device::Cpu,
            )?)),
            shape => Err(Error::Config {
                path: path.to_path_buf(),
                reason: format!(
                    "flow noise of shape {shape:?}; S3Gen needs ({MEL_CHANNELS}, frames)"
                ),
            }),
        }
    }

    /// The noise for `frames` mel frames, `[80, frames]` (or more, for given noise).
    pub fn for_frames(&self, frames: usize) -> Result<Tensor> {
        match self {
            Self::Seeded(seed) => {
                let values = gaussian(&mut SeededSource::new(*seed), MEL_CHANNELS * frames);
                Ok(Tensor::from_vec(
                    values,
                    (MEL_CHANNELS, frames),
                    &Device::Cpu,
                )?)
            }
            Self::Given(t) => {
                let have = t.dim(1)?;
                if have < frames {
                    return Err(Error::InvalidInput(format!(
                        "the flow noise has {have} frames; this input needs {frames} (prompt included)"
                    )));
                }
                Ok(t.clone())
            }
        }
    }
}

/// The vocoder's sine phases (uniform in ±π) and noise from a seeded
/// generator.
#[derive(Debug, Clone)]
pub struct SeededSourceNoise {
    source: SeededSource,
}

impl SeededSourceNoise {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        // A stream apart from the flow noise of the same seed.
        Self {
            source: SeededSource::new(seed ^ 0x5EED_50C1_A11E_7A1E),
        }
    }
}

impl SourceNoise for SeededSourceNoise {
    fn phases(&mut self) -> [f32; HARMONICS] {
        let mut phases = [0f32; HARMONICS];
        for p in &mut phases {
            *p = ((self.source.next_uniform() * 2.0 - 1.0) * std::f64::consts::PI) as f32;
        }
        phases
    }

    fn normal(&mut self, n: usize) -> Vec<f32> {
        gaussian(&mut self.source, n)
    }
}

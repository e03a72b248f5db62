//! The GE2E speaker encoder of resemblyzer (and of Chatterbox, whose
//! `VoiceEncoder` is the same design): mel frames → a 256-dimensional,
//! L2-normalized speaker embedding, the first step of voice cloning.
//!
//! Architecture (`resemblyzer/voice_encoder.py`): a 3-layer LSTM (40 mel
//! channels → 256), a linear layer 256 → 256, ReLU, L2 normalization; the
//! embedding of a window is computed from the last layer's final hidden
//! state. Windows of 160 frames are batched.
//!
//! Weights: resemblyzer's `pretrained.pt` (legacy PyTorch format, read by
//! [`crate::torch_legacy`]; `lstm.*` and `linear.*` under `model_state`) or
//! Chatterbox's `ve.safetensors` (`lstm.*` and `proj.*`).
//!
//! On the CPU in f32 the encoder runs as host loops ([`cpu`]); elsewhere as
//! candle ops.

mod cpu;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};

use crate::nn::cpu_ops::with_cpu_slice;
use crate::torch_legacy::LegacyCheckpoint;
use crate::{Error, Result};

/// Mel channels of the input frames.
pub const MEL_CHANNELS: usize = 40;
/// Frames per partial utterance (1.6 s at a 10 ms hop).
pub const WINDOW_FRAMES: usize = 160;

/// Samples per mel frame at 16 kHz (a 10 ms hop).
pub const HOP: usize = 160;

/// Where resemblyzer's `compute_partial_slices` starts its windows (in mel
/// frames) for an utterance of `n_samples` at 16 kHz: one window of
/// [`WINDOW_FRAMES`] every `round(16000 / rate / HOP)` frames, covering the
/// whole utterance, the last one dropped when less than `min_coverage` of it
/// holds audio (unless it is the only one). The waveform must be zero-padded
/// to `last start + WINDOW_FRAMES` frames before the mel spectrogram is taken.
pub fn partial_window_starts(n_samples: usize, rate: f64, min_coverage: f64) -> Result<Vec<usize>> {
    let valid = rate > 0.0 && min_coverage > 0.0 && min_coverage <= 1.0;
    if !valid {
        return Err(Error::InvalidInput(format!(
            "partial windows: rate {rate} must be positive and coverage {min_coverage} in (0, 1]"
        )));
    }
    let n_frames = (n_samples + 1).div_ceil(HOP);
    let step = (16000.0 / rate / HOP as f64).round() as usize;
    if step == 0 || step > WINDOW_FRAMES {
        return Err(Error::InvalidInput(format!(
            "partial windows: {rate} windows per second gives a step of {step} frames (1 to {WINDOW_FRAMES} allowed)"
        )));
    }
    let steps = (n_frames + step + 1).saturating_sub(WINDOW_FRAMES).max(1);
    let mut starts: Vec<usize> = (0..steps).step_by(step).collect();
    if let Some(&last) = starts.last() {
        let (lo, hi) = (last * HOP, (last + WINDOW_FRAMES) * HOP);
        let coverage = (n_samples as f64 - lo as f64) / (hi - lo) as f64;
        if coverage < min_coverage && starts.len() > 1 {
            starts.pop();
        }
    }
    Ok(starts)
}

/// Chatterbox's partial windows over `frames` mel frames (its
/// `get_frame_step` and `get_num_wins`): a window of 160 frames every
/// `round(16000 / rate / 160)` frames, the last one kept when it would be
/// covered at least `min_coverage`. Returns the window starts and the frame
/// count the mel is padded to (with zero frames) or cut to.
pub fn chatterbox_partials(
    frames: usize,
    rate: f64,
    min_coverage: f64,
) -> Result<(Vec<usize>, usize)> {
    let valid = rate > 0.0 && min_coverage > 0.0 && min_coverage <= 1.0;
    let step = if valid {
        (16000.0 / rate / WINDOW_FRAMES as f64).round() as usize
    } else {
        0
    };
    if step == 0 || step > WINDOW_FRAMES {
        return Err(Error::InvalidInput(format!(
            "partial windows: rate {rate} and coverage {min_coverage} give a step of {step} frames (1 to {WINDOW_FRAMES} allowed)"
        )));
    }
    let available = (frames + step).saturating_sub(WINDOW_FRAMES);
    let (mut windows, remainder) = (available / step, available % step);
    let covered = (remainder + WINDOW_FRAMES - step) as f64 / WINDOW_FRAMES as f64;
    if windows == 0 || covered >= min_coverage {
        windows += 1;
    }
    let target = WINDOW_FRAMES + step * (windows - 1);
    Ok(((0..windows).map(|i| i * step).collect(), target))
}

/// An utterance's embedding from its windows' embeddings: their mean,
/// L2-normalized (resemblyzer's `embed_utterance`). Empty input gives an
/// empty embedding.
pub fn utterance_embedding(partials: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = partials.first() else {
        return Vec::new();
    };
    let mut mean = vec![0f64; first.len()];
    for row in partials {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, v)| *m += f64::from(*v));
    }
    let norm = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    mean.iter().map(|m| (m * scale) as f32).collect()
}

/// One LSTM layer with PyTorch's gate order (input, forget, cell, output).
#[derive(Debug, Clone)]
struct LstmLayer {
    /// `W_ihᵀ`, `[in, 4H]`, transposed once at load for `x · Wᵀ`.
    w_ih_t: Tensor,
    /// `W_hhᵀ`, `[H, 4H]`.
    w_hh_t: Tensor,
    /// `b_ih + b_hh`, `[4H]`.
    bias: Tensor,
    hidden: usize,
}

impl LstmLayer {
    /// Runs the layer over `x` `[b, t, in]`; returns all hidden states
    /// `[b, t, H]` and the last one `[b, H]`.
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, t, input) = x.dims3()?;
        let h = self.hidden;
        // The input projection of every step in one matrix product.
        let xw = x
            .reshape((b * t, input))?
            .matmul(&self.w_ih_t)?
            .broadcast_add(&self.bias)?
            .reshape((b, t, 4 * h))?;
        let mut hs = Tensor::zeros((b, h), x.dtype(), x.device())?;
        let mut cs = hs.clone();
        let mut outputs = Vec::with_capacity(t);
        for step in 0..t {
            let gates = (xw.narrow(1, step, 1)?.squeeze(1)? + hs.matmul(&self.w_hh_t)?)?;
            let i = candle_nn::ops::sigmoid(&gates.narrow(1, 0, h)?)?;
            let f = candle_nn::ops::sigmoid(&gates.narrow(1, h, h)?)?;
            let g = gates.narrow(1, 2 * h, h)?.tanh()?;
            let o = candle_nn::ops::sigmoid(&gates.narrow(1, 3 * h, h)?)?;
            cs = ((f * &cs)? + (i * g)?)?;
            hs = (o * cs.tanh()?)?;
            outputs.push(hs.clone());
        }
        Ok((Tensor::stack(&outputs, 1)?, hs))
    }
}

/// The speaker encoder.
#[derive(Debug, Clone)]
pub struct VoiceEncoder {
    layers: Vec<LstmLayer>,
    /// The projection's weights transposed, `[H, E]`.
    proj_t: Tensor,
    proj_bias: Tensor,
    /// Host copies of the weights when they live on the CPU.
    host: Option<cpu::HostEncoder>,
}

impl VoiceEncoder {
    /// Loads resemblyzer's `pretrained.pt` (the `model_state` entry).
    pub fn from_resemblyzer(path: &Path, device: &Device) -> Result<Self> {
        let ckpt = LegacyCheckpoint::read(path)?;
        let tensors: HashMap<String, Tensor> = ckpt
            .tensors(Some("model_state"), device)?
            .into_iter()
            .collect();
        Self::from_tensors(&tensors, "linear", path)
    }

    /// Loads Chatterbox's `ve.safetensors` or the multilingual
    /// checkpoint's `ve.pt` (a `torch.save` state dict): `lstm.*`, `proj.*`.
    pub fn from_chatterbox(path: &Path, device: &Device) -> Result<Self> {
        let unreadable = |kind: &str, e: candle_core::Error| {
            Error::Unsupported(format!("{}: not a readable {kind} ({e})", path.display()))
        };
        let tensors: HashMap<String, Tensor> =
            match path.extension().is_some_and(|e| e == "safetensors") {
                true => candle_core::safetensors::load(path, device)
                    .map_err(|e| unreadable("safetensors file", e))?,
                false => candle_core::pickle::read_all(path)
                    .map_err(|e| unreadable("torch.save file", e))?
                    .into_iter()
                    .map(|(name, t)| Ok((name, t.to_device(device)?)))
                    .collect::<candle_core::Result<_>>()
                    .map_err(|e| unreadable("torch.save file", e))?,
            };
        Self::from_tensors(&tensors, "proj", path)
    }

    /// Builds the encoder from PyTorch-named tensors, the output layer under `proj`.
    fn from_tensors(tensors: &HashMap<String, Tensor>, proj: &str, path: &Path) -> Result<Self> {
        let get = |name: &str| -> Result<Tensor> {
            tensors
                .get(name)
                .map(|t| t.to_dtype(DType::F32))
                .transpose()?
                .ok_or_else(|| {
                    Error::Unsupported(format!(
                        "{}: tensor {name} is missing (not a GE2E voice encoder?)",
                        path.display()
                    ))
                })
        };
        let mut layers = Vec::new();
        let mut input = MEL_CHANNELS;
        while tensors.contains_key(&format!("lstm.weight_ih_l{}", layers.len())) {
            let l = layers.len();
            let w_ih = get(&format!("lstm.weight_ih_l{l}"))?;
            let w_hh = get(&format!("lstm.weight_hh_l{l}"))?;
            let (four_h, inp) = w_ih.dims2()?;
            let hidden = four_h / 4;
            if inp != input || four_h != 4 * hidden || w_hh.dims2()? != (four_h, hidden) {
                return Err(Error::Unsupported(format!(
                    "{}: LSTM layer {l} has shapes {:?} and {:?}, expected [4H, {input}] and [4H, H]",
                    path.display(),
                    w_ih.dims(),
                    w_hh.dims()
                )));
            }
            let bias = (get(&format!("lstm.bias_ih_l{l}"))? + get(&format!("lstm.bias_hh_l{l}"))?)?;
            layers.push(LstmLayer {
                w_ih_t: w_ih.t()?.contiguous()?,
                w_hh_t: w_hh.t()?.contiguous()?,
                bias,
                hidden,
            });
            input = hidden;
        }
        if layers.is_empty() {
            return Err(Error::Unsupported(format!(
                "{}: no LSTM weights (lstm.weight_ih_l0) found",
                path.display()
            )));
        }
        let proj_w = get(&format!("{proj}.weight"))?;
        if proj_w.dim(1)? != input {
            return Err(Error::Unsupported(format!(
                "{}: {proj}.weight is {:?}, expected [E, {input}]",
                path.display(),
                proj_w.dims()
            )));
        }
        let proj_t = proj_w.t()?.contiguous()?;
        let proj_bias = get(&format!("{proj}.bias"))?;
        let host = match proj_t.device() {
            Device::Cpu => Some(Self::host_copy(&layers, &proj_t, &proj_bias)?),
            _ => None,
        };
        Ok(Self {
            layers,
            proj_t,
            proj_bias,
            host,
        })
    }

    /// The weights as host vectors for [`cpu::HostEncoder`].
    fn host_copy(
        layers: &[LstmLayer],
        proj_t: &Tensor,
        proj_bias: &Tensor,
    ) -> Result<cpu::HostEncoder> {
        let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        Ok(cpu::HostEncoder {
            layers: layers
                .iter()
                .map(|l| {
                    Ok(cpu::HostLstmLayer {
                        w_ih_t: flat(&l.w_ih_t)?,
                        w_hh_t: flat(&l.w_hh_t)?,
                        bias: flat(&l.bias)?,
                        input: l.w_ih_t.dim(0)?,
                        hidden: l.hidden,
                    })
                })
                .collect::<Result<_>>()?,
            proj_t: flat(proj_t)?,
            proj_bias: flat(proj_bias)?,
        })
    }

    /// Size of the embeddings.
    pub fn embedding_size(&self) -> usize {
        self.proj_bias.dims1().unwrap_or(0)
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.proj_t.device()
    }

    /// Embeddings of a batch of windows `[b, frames, 40]` → `[b, E]`:
    /// `normalize(relu(linear(h_last)))`.
    pub fn embed_windows(&self, mels: &Tensor) -> Result<Tensor> {
        let (b, t, c) = mels.dims3()?;
        if c != MEL_CHANNELS {
            return Err(Error::InvalidInput(format!(
                "voice encoder input has {c} channels per frame, expected {MEL_CHANNELS}"
            )));
        }
        match &self.host {
            Some(host) if matches!(mels.device(), Device::Cpu) && b > 0 && t > 0 => {
                let out = with_cpu_slice(&mels.to_dtype(DType::F32)?, |data| {
                    host.embed_windows(data, b, t)
                })?;
                Ok(Tensor::from_vec(
                    out,
                    (b, self.embedding_size()),
                    mels.device(),
                )?)
            }
            _ => self.embed_windows_candle(mels),
        }
    }

    /// [`Self::embed_windows`] as candle ops (any device).
    fn embed_windows_candle(&self, mels: &Tensor) -> Result<Tensor> {
        let mut x = mels.to_dtype(DType::F32)?;
        let mut last = None;
        for layer in &self.layers {
            let (all, h) = layer.forward(&x)?;
            x = all;
            last = Some(h);
        }
        let h = last.ok_or_else(|| Error::Unsupported("voice encoder without layers".into()))?;
        let raw = h
            .matmul(&self.proj_t)?
            .broadcast_add(&self.proj_bias)?
            .relu()?;
        let norm = raw.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        Ok(raw.broadcast_div(&norm)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatterbox_partials_follow_get_num_wins() {
        // Values of the reference's get_num_wins with rate 1.3 (step 77), coverage 0.8.
        assert_eq!(chatterbox_partials(100, 1.3, 0.8).unwrap(), (vec![0], 160));
        assert_eq!(chatterbox_partials(160, 1.3, 0.8).unwrap(), (vec![0], 160));
        // 300 frames: divmod(217, 77) = (2, 63); (63 + 83) / 160 = 0.91 ≥ 0.8: 3 windows.
        assert_eq!(
            chatterbox_partials(300, 1.3, 0.8).unwrap(),
            (vec![0, 77, 154], 314)
        );
        // 250 frames: divmod(167, 77) = (2, 13); 96 / 160 = 0.6: 2 windows.
        assert_eq!(
            chatterbox_partials(250, 1.3, 0.8).unwrap(),
            (vec![0, 77], 237)
        );
        assert!(chatterbox_partials(300, 0.0, 0.8).is_err());
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/chatterbox_ve")
            .join(name)
    }

    fn floats(name: &str) -> Vec<f32> {
        std::fs::read(fixture(name))
            .expect("fixture")
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Chatterbox's naming (`proj.*`), against PyTorch's LSTM on a random
    /// encoder (`tools/make_chatterbox_encoder_fixture.py`); resemblyzer's
    /// naming is tested with its real weights in the `vivace` crate.
    #[test]
    fn chatterbox_layout_matches_pytorch() -> Result<()> {
        let encoder = VoiceEncoder::from_chatterbox(&fixture("ve.safetensors"), &Device::Cpu)?;
        assert_eq!(encoder.embedding_size(), 16);
        let mels = Tensor::from_vec(floats("mels.f32"), (3, 24, MEL_CHANNELS), &Device::Cpu)?;
        let got = encoder
            .embed_windows(&mels)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let want = floats("embeds.f32");
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        Ok(())
    }

    /// resemblyzer's slices for the golden utterances (88320 and 84000
    /// samples: 6 windows every 77 frames) and its edge cases.
    #[test]
    fn partial_windows_follow_resemblyzer() -> Result<()> {
        let six = vec![0, 77, 154, 231, 308, 385];
        assert_eq!(partial_window_starts(88320, 1.3, 0.75)?, six);
        assert_eq!(partial_window_starts(84000, 1.3, 0.75)?, six);
        // Shorter than one window: still one window.
        assert_eq!(partial_window_starts(1000, 1.3, 0.75)?, vec![0]);
        assert!(partial_window_starts(1000, 0.0, 0.75).is_err());
        assert!(partial_window_starts(1000, 1.3, 1.5).is_err());
        Ok(())
    }

    /// The CPU host loops against the same encoder as candle ops, on an odd
    /// number of windows (split unevenly between threads).
    #[test]
    fn host_loops_match_candle_ops() -> Result<()> {
        let encoder = VoiceEncoder::from_chatterbox(&fixture("ve.safetensors"), &Device::Cpu)?;
        let mels = Tensor::randn(0f32, 1.0, (5, 37, MEL_CHANNELS), &Device::Cpu)?.abs()?;
        let host = encoder.embed_windows(&mels)?.to_vec2::<f32>()?;
        let ops = encoder.embed_windows_candle(&mels)?.to_vec2::<f32>()?;
        for (h, o) in host.iter().flatten().zip(ops.iter().flatten()) {
            assert!((h - o).abs() < 1e-5, "{h} vs {o}");
        }
        Ok(())
    }

    #[test]
    fn files_without_an_encoder_are_clear_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("other.safetensors");
        let t = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).expect("tensor");
        candle_core::safetensors::save(&HashMap::from([("w".to_string(), t)]), &path)
            .expect("save");
        let err = VoiceEncoder::from_chatterbox(&path, &Device::Cpu)
            .expect_err("no LSTM")
            .to_string();
        assert!(err.contains("lstm.weight_ih_l0"), "{err}");
        std::fs::write(&path, b"garbage").expect("write");
        let err = VoiceEncoder::from_chatterbox(&path, &Device::Cpu)
            .expect_err("garbage")
            .to_string();
        assert!(err.contains("safetensors"), "{err}");
    }
}

//! Piper voices: `NAME.onnx` (a PyTorch VITS export) and `NAME.onnx.json`.
//!
//! The JSON is [Piper's voice config](https://github.com/OHF-Voice/piper1-gpl/blob/main/src/piper/config.py);
//! the ONNX file supplies the weights (read by [`crate::onnx`], never run) and,
//! through its tensor shapes and node attributes, the architecture, which the
//! JSON does not record. Any Piper VITS voice loads: x_low, low, medium, high,
//! single or multi-speaker.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::onnx::OnnxWeights;
use crate::vits::{ResBlockKind, SynthesisParams, Vits, VitsConfig};

/// `audio` section of the voice JSON.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AudioConfig {
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// Piper's quality label (`x_low`, `low`, `medium`, `high`).
    #[serde(default)]
    pub quality: Option<String>,
}

/// `espeak` section: which espeak-ng voice phonemizes the text.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EspeakConfig {
    /// espeak-ng voice name, such as `en-us`.
    pub voice: String,
}

/// `inference` section: the voice's default synthesis scales.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct InferenceConfig {
    /// Prior noise scale.
    pub noise_scale: f64,
    /// Duration multiplier.
    pub length_scale: f64,
    /// Duration noise scale.
    pub noise_w: f64,
}

/// A Piper voice's `.onnx.json`, with the fields Vivace uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PiperConfig {
    /// Audio settings.
    pub audio: AudioConfig,
    /// Phonemizer settings.
    pub espeak: EspeakConfig,
    /// Default scales.
    pub inference: InferenceConfig,
    /// `espeak` (the only kind Vivace phonemizes) or `text`.
    #[serde(default = "default_phoneme_type")]
    pub phoneme_type: String,
    /// Phoneme (one code point) → ids.
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// Size of the id vocabulary.
    #[serde(default)]
    pub num_symbols: Option<usize>,
    /// Number of speakers.
    #[serde(default = "one")]
    pub num_speakers: usize,
    /// Speaker name → id, for multi-speaker voices.
    #[serde(default)]
    pub speaker_id_map: BTreeMap<String, u32>,
    /// Phoneme sequences merged into one phoneme before id lookup (optional).
    #[serde(default)]
    pub vowel_clusters: Vec<Vec<String>>,
    /// The voice's language (`language.code`, e.g. `en_US`; optional).
    #[serde(default)]
    pub language: Option<LanguageConfig>,
}

/// The `language` block of a Piper voice config.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LanguageConfig {
    /// Code such as `en_US`.
    pub code: String,
}

fn default_phoneme_type() -> String {
    "espeak".into()
}

fn one() -> usize {
    1
}

impl PiperConfig {
    /// Refuses the phoneme types Vivace cannot phonemize yet, naming the
    /// phonemizer piper-tts 1.8 would use instead.
    pub fn check_phoneme_type(&self, path: &Path) -> Result<()> {
        let missing = match self.phoneme_type.as_str() {
            "espeak" | "hebrew" | "thai" | "japanese" | "text" => return Ok(()),
            "pinyin" => "Chinese with g2pW",
            _ => "an unknown phonemizer",
        };
        Err(Error::Config {
            path: path.to_path_buf(),
            reason: format!(
                "phoneme_type `{}` ({missing}) is not supported yet: Vivace phonemizes `espeak` voices, in every espeak-ng language, and `hebrew`, `thai`, `japanese` and `text` ones",
                self.phoneme_type
            ),
        })
    }

    /// Maps phonemes (one code point each, as the phonemizer returns them) to
    /// ids with Piper's rules: `^`, then each phoneme's ids followed by the pad
    /// `_`, then `$`. Phonemes missing from the map are dropped and returned.
    pub fn phonemes_to_ids(&self, phonemes: &[String]) -> (Vec<i64>, Vec<String>) {
        let map = &self.phoneme_id_map;
        let get = |p: &str| map.get(p).cloned().unwrap_or_default();
        let pad = get("_");
        let mut ids = get("^");
        ids.extend(&pad);
        let mut missing = Vec::new();
        for p in phonemes {
            match map.get(p.as_str()) {
                Some(v) => {
                    ids.extend(v);
                    ids.extend(&pad);
                }
                None => missing.push(p.clone()),
            }
        }
        ids.extend(get("$"));
        (ids, missing)
    }

    /// Reads and parses a voice JSON.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses a voice JSON; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: format!("not a valid Piper voice config: {e}"),
        })
    }

    /// The voice's default synthesis parameters (speaker 0).
    pub fn default_params(&self) -> SynthesisParams {
        SynthesisParams {
            noise_scale: self.inference.noise_scale,
            length_scale: self.inference.length_scale,
            noise_w: self.inference.noise_w,
            speaker: None,
            seed: None,
        }
    }

    /// Resolves a speaker given by name or number; the error lists the valid ones.
    pub fn speaker(&self, given: &str) -> Result<u32> {
        if let Some(&id) = self.speaker_id_map.get(given) {
            return Ok(id);
        }
        if let Ok(id) = given.parse::<u32>() {
            if (id as usize) < self.num_speakers {
                return Ok(id);
            }
        }
        let valid = if self.num_speakers <= 1 {
            "this voice has a single speaker (0)".to_string()
        } else if self.speaker_id_map.is_empty() {
            format!("valid ids are 0..{}", self.num_speakers - 1)
        } else {
            let names: Vec<_> = self
                .speaker_id_map
                .iter()
                .map(|(n, i)| format!("{n} ({i})"))
                .collect();
            format!(
                "valid speakers are ids 0..{} or names: {}",
                self.num_speakers - 1,
                names.join(", ")
            )
        };
        Err(Error::InvalidInput(format!(
            "unknown speaker `{given}`: {valid}"
        )))
    }
}

/// A loaded Piper voice: its config and the VITS model built from its weights.
#[derive(Debug, Clone)]
pub struct PiperVoice {
    /// The `.onnx.json` contents.
    pub config: PiperConfig,
    /// The model.
    pub model: Vits,
    /// The file it came from: the `.onnx` or a compact voice file.
    pub path: PathBuf,
}

impl PiperVoice {
    /// The config path Piper expects beside `onnx`: `NAME.onnx.json`.
    pub fn config_path(onnx: &Path) -> PathBuf {
        let mut p = onnx.as_os_str().to_owned();
        p.push(".json");
        PathBuf::from(p)
    }

    /// Loads a voice onto `device` in `dtype`: a Piper `.onnx` with its
    /// `.onnx.json` beside it, or a compact voice file (`.safetensors`,
    /// written by [`crate::compact::write`]).
    pub fn load(path: &Path, device: &Device, dtype: DType) -> Result<Self> {
        PiperParts::read(path, device)?.build(dtype)
    }

    /// Maps phonemes to ids with the voice's map: see
    /// [`PiperConfig::phonemes_to_ids`].
    pub fn phonemes_to_ids(&self, phonemes: &[String]) -> (Vec<i64>, Vec<String>) {
        self.config.phonemes_to_ids(phonemes)
    }
}

/// A Piper voice read and checked but not yet built into a model: its
/// config, architecture and weights under the model's parameter names. This
/// is what a compact voice file stores.
#[derive(Debug)]
pub struct PiperParts {
    /// The parsed config.
    pub config: PiperConfig,
    /// The config's JSON text, verbatim (a compact file keeps it whole).
    pub config_json: String,
    /// The architecture, read off the weights.
    pub architecture: VitsConfig,
    /// Weights by VITS parameter name (`dec.ups.0.weight`).
    pub tensors: HashMap<String, Tensor>,
    /// The file the weights came from.
    pub path: PathBuf,
}

impl PiperParts {
    /// Reads a `.onnx` voice (with its `.onnx.json`, weights in f32) or a
    /// compact voice file (weights in their stored dtype). [`Self::build`]
    /// converts them, so a bf16 build still has f32 weights where it keeps
    /// f32 (see [`Vits`]).
    pub fn read(path: &Path, device: &Device) -> Result<Self> {
        if crate::compact::is_compact_path(path) {
            Ok(crate::compact::read(path, device)?.0)
        } else {
            Self::read_onnx(path, device, DType::F32)
        }
    }

    /// Reads `onnx` and the `.onnx.json` beside it onto `device` in `dtype`.
    pub fn read_onnx(onnx: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let config_path = PiperVoice::config_path(onnx);
        if !config_path.exists() {
            return Err(Error::Config {
                path: config_path,
                reason: "missing: a Piper voice needs its .onnx.json beside the .onnx".into(),
            });
        }
        let config_json = std::fs::read_to_string(&config_path).map_err(|source| Error::Io {
            path: config_path.clone(),
            source,
        })?;
        let config = PiperConfig::parse(&config_json, &config_path)?;
        let mut weights = OnnxWeights::read(onnx, device, dtype)?;
        normalize_names(&mut weights.tensors).map_err(|e| Error::CorruptOnnx {
            path: onnx.to_path_buf(),
            reason: e.to_string(),
        })?;
        let architecture = infer_config(&weights, config.audio.sample_rate)?;
        check_config_matches(&config, &config_path, &architecture)?;
        Ok(Self {
            config,
            config_json,
            architecture,
            tensors: weights.tensors,
            path: onnx.to_path_buf(),
        })
    }

    /// Builds the model, weights converted to `dtype` on their device.
    pub fn build(self, dtype: DType) -> Result<PiperVoice> {
        let device = self
            .tensors
            .values()
            .next()
            .map(|t| t.device().clone())
            .unwrap_or(Device::Cpu);
        let vb = VarBuilder::from_tensors(self.tensors, dtype, &device);
        let model = Vits::new(&self.architecture, vb).map_err(|e| Error::Config {
            path: self.path.clone(),
            reason: format!("the weights do not fit a VITS model ({e})"),
        })?;
        Ok(PiperVoice {
            config: self.config,
            model,
            path: self.path,
        })
    }
}

/// Renames exporter artefacts to the VITS parameter names the model expects.
/// The reverse affine flow computes `(z - m) * exp(-logs)`, and the export
/// keeps `-logs` as the anonymous input of `/dp/flows.0/Exp` (read as
/// `dp.flows.0.Exp_input`); a simplified export (Piper's released voices) folds
/// `exp(-logs)` itself into `/dp/flows.0/Exp_output_0` (read as
/// `dp.flows.0.Exp`). Either way we recover `logs`.
fn normalize_names(tensors: &mut HashMap<String, Tensor>) -> candle_core::Result<()> {
    if let Some(neg_logs) = tensors.remove("dp.flows.0.Exp_input") {
        tensors
            .entry("dp.flows.0.logs".into())
            .or_insert(neg_logs.neg()?);
    }
    if let Some(exp_neg_logs) = tensors.remove("dp.flows.0.Exp") {
        tensors
            .entry("dp.flows.0.logs".into())
            .or_insert(exp_neg_logs.log()?.neg()?);
    }
    Ok(())
}

/// Reads the architecture off the weights' shapes and the nodes' attributes.
fn infer_config(w: &OnnxWeights, sample_rate: u32) -> Result<VitsConfig> {
    let path = &w.path;
    let missing = |name: &str| Error::CorruptOnnx {
        path: path.clone(),
        reason: format!("tensor `{name}` is missing: this is not a Piper VITS voice"),
    };
    let dims = |name: &str| -> Result<Vec<usize>> {
        w.tensors
            .get(name)
            .map(|t| t.dims().to_vec())
            .ok_or_else(|| missing(name))
    };
    let count = |prefix: &str| {
        (0..)
            .take_while(|i| {
                let p = format!("{prefix}.{i}.");
                w.tensors.keys().any(|k| k.starts_with(&p))
            })
            .count()
    };
    let dilation = |module: &str| -> usize {
        w.nodes
            .get(module)
            .and_then(|n| n.ints("dilations"))
            .and_then(|d| d.first().copied())
            .map_or(1, |d| d as usize)
    };
    let bad = |reason: String| Error::CorruptOnnx {
        path: path.clone(),
        reason,
    };

    let emb = dims("enc_p.emb.weight")?;
    let (vocab_size, hidden_size) = (emb[0], emb[1]);
    let rel = dims("enc_p.encoder.attn_layers.0.emb_rel_k")?;
    let head_dim = rel[2];
    if head_dim == 0 || hidden_size % head_dim != 0 {
        return Err(bad(format!(
            "attention head size {head_dim} does not divide hidden size {hidden_size}"
        )));
    }
    let ffn = dims("enc_p.encoder.ffn_layers.0.conv_1.weight")?;
    let proj = dims("enc_p.proj.weight")?;

    let stochastic = w.tensors.contains_key("dp.flows.0.m");
    let (dp_filter, dp_kernel, dds_layers, bins, dp_flows) = if stochastic {
        let pre = dims("dp.pre.weight")?;
        let sep = dims("dp.convs.convs_sep.0.weight")?;
        let proj = dims("dp.flows.3.proj.weight")?;
        // Flows are [affine, (spline, flip) × n] with spline j at index 2j + 1;
        // exports drop flows.1, which inference never runs.
        let last = (1usize..64)
            .rev()
            .step_by(2)
            .find(|i| w.tensors.contains_key(&format!("dp.flows.{i}.proj.weight")))
            .ok_or_else(|| missing("dp.flows.3.proj.weight"))?;
        (
            pre[0],
            sep[2],
            count("dp.convs.convs_sep"),
            (proj[0] + 1) / 3,
            last.div_ceil(2),
        )
    } else {
        let c1 = dims("dp.conv_1.weight")?;
        (c1[0], c1[2], 0, 10, 4)
    };

    let wn = dims("flow.flows.0.enc.in_layers.0.weight")?;
    let flows = (0..)
        .take_while(|i| {
            w.tensors
                .contains_key(&format!("flow.flows.{}.pre.weight", 2 * i))
        })
        .count();
    let wn_layers = count("flow.flows.0.enc.in_layers");
    let wn_dilation = if wn_layers > 1 {
        dilation("flow.flows.0.enc.in_layers.1")
    } else {
        1
    };

    let conv_pre = dims("dec.conv_pre.weight")?;
    let n_ups = count("dec.ups");
    let mut upsample_rates = Vec::new();
    let mut upsample_kernel_sizes = Vec::new();
    for i in 0..n_ups {
        let module = format!("dec.ups.{i}");
        let shape = dims(&format!("{module}.weight"))?;
        let stride = w
            .nodes
            .get(&module)
            .and_then(|n| n.ints("strides"))
            .and_then(|s| s.first().copied())
            .ok_or_else(|| bad(format!("no stride recorded for `{module}`")))?;
        upsample_rates.push(stride as usize);
        upsample_kernel_sizes.push(shape[2]);
    }
    let n_blocks = count("dec.resblocks");
    if n_ups == 0 || n_blocks % n_ups != 0 {
        return Err(bad(format!(
            "{n_blocks} residual blocks do not split evenly over {n_ups} upsampling stages"
        )));
    }
    let per_stage = n_blocks / n_ups;
    let resblock = if w.tensors.contains_key("dec.resblocks.0.convs1.0.weight") {
        ResBlockKind::One
    } else {
        ResBlockKind::Two
    };
    let conv_name = match resblock {
        ResBlockKind::One => "convs1",
        ResBlockKind::Two => "convs",
    };
    let mut resblock_kernel_sizes = Vec::new();
    let mut resblock_dilation_sizes = Vec::new();
    for j in 0..per_stage {
        let prefix = format!("dec.resblocks.{j}.{conv_name}");
        resblock_kernel_sizes.push(dims(&format!("{prefix}.0.weight"))?[2]);
        resblock_dilation_sizes.push(
            (0..count(&prefix))
                .map(|k| dilation(&format!("{prefix}.{k}")))
                .collect(),
        );
    }

    let (num_speakers, speaker_embedding_size) = match w.tensors.get("emb_g.weight") {
        Some(t) => (t.dims()[0], t.dims()[1]),
        None => (1, 0),
    };
    Ok(VitsConfig {
        vocab_size,
        hidden_size,
        num_hidden_layers: count("enc_p.encoder.attn_layers"),
        num_attention_heads: hidden_size / head_dim,
        window_size: (rel[1] - 1) / 2,
        ffn_dim: ffn[0],
        ffn_kernel_size: ffn[2],
        flow_size: proj[0] / 2,
        use_stochastic_duration_prediction: stochastic,
        duration_predictor_filter_channels: dp_filter,
        duration_predictor_kernel_size: dp_kernel,
        depth_separable_num_layers: dds_layers,
        duration_predictor_flow_bins: bins,
        duration_predictor_tail_bound: 5.0,
        duration_predictor_num_flows: dp_flows,
        prior_encoder_num_flows: flows,
        prior_encoder_num_wavenet_layers: wn_layers,
        wavenet_kernel_size: wn[2],
        wavenet_dilation_rate: wn_dilation,
        upsample_initial_channel: conv_pre[0],
        upsample_rates,
        upsample_kernel_sizes,
        resblock_kernel_sizes,
        resblock_dilation_sizes,
        resblock,
        num_speakers,
        speaker_embedding_size,
        layer_norm_eps: 1e-5,
        use_bias: true,
        sampling_rate: sample_rate,
    })
}

/// The JSON must describe the weights it sits beside.
pub(crate) fn check_config_matches(
    config: &PiperConfig,
    path: &Path,
    cfg: &VitsConfig,
) -> Result<()> {
    let mismatch = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason: format!("does not match the voice's weights: {reason}"),
    };
    config.check_phoneme_type(path)?;
    if let Some(n) = config.num_symbols {
        if n != cfg.vocab_size {
            return Err(mismatch(format!(
                "num_symbols is {n} but the model's embedding has {} rows",
                cfg.vocab_size
            )));
        }
    }
    if config.num_speakers != cfg.num_speakers {
        return Err(mismatch(format!(
            "num_speakers is {} but the model has {} speaker embeddings",
            config.num_speakers, cfg.num_speakers
        )));
    }
    let too_big = config
        .phoneme_id_map
        .iter()
        .flat_map(|(p, ids)| ids.iter().map(move |&id| (p, id)))
        .find(|&(_, id)| id < 0 || id as usize >= cfg.vocab_size);
    if let Some((p, id)) = too_big {
        return Err(mismatch(format!(
            "phoneme `{p}` maps to id {id}, outside the model's {} ids",
            cfg.vocab_size
        )));
    }
    for p in ["^", "_", "$"] {
        if !config.phoneme_id_map.contains_key(p) {
            return Err(Error::Config {
                path: path.to_path_buf(),
                reason: format!("phoneme_id_map lacks `{p}`, which Piper's id rules need"),
            });
        }
    }
    Ok(())
}

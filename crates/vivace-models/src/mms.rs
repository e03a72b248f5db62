//! MMS-TTS voices: Hugging Face `VitsModel` checkpoints (`facebook/mms-tts-*`
//! and anything saved with `save_pretrained`), run by the same VITS code as
//! Piper voices.
//!
//! A checkpoint directory holds `config.json` (`VitsConfig`, whose field names
//! [`VitsConfig`] already uses), `model.safetensors` (memory-mapped through
//! candle's `VarBuilder`), and the tokenizer files read by
//! `vivace_frontend::vits_tokenizer`. The model asks for its weights under
//! the original VITS names (`enc_p.*`, `dp.*`, `flow.*`, `dec.*`); the backend
//! here answers with the checkpoint's tensor: one model, two name maps.
//! Weight norm is folded at load (`weight_g`/`weight_v` in hub checkpoints,
//! `parametrizations.weight.original0/1` in newer `save_pretrained` output),
//! and the attention projections (`nn.Linear`) are read as 1×1 convolutions.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::nn::checkpoint::Checkpoint;
use crate::vits::{SynthesisParams, Vits, VitsConfig};
use crate::{Error, Result};

/// The checkpoint files [`MmsVoice::load`] needs.
pub const CHECKPOINT_FILES: [&str; 3] = ["config.json", "model.safetensors", "vocab.json"];

/// The inference settings of `config.json` that are not architecture.
#[derive(Debug, Clone, serde::Deserialize)]
struct InferenceDefaults {
    #[serde(default = "default_relu")]
    hidden_act: String,
    #[serde(default = "default_two")]
    depth_separable_channels: usize,
    #[serde(default = "one")]
    speaking_rate: f64,
    #[serde(default = "default_noise_scale")]
    noise_scale: f64,
    #[serde(default = "default_noise_scale_duration")]
    noise_scale_duration: f64,
}

fn default_relu() -> String {
    "relu".into()
}
fn default_two() -> usize {
    2
}
fn one() -> f64 {
    1.0
}
fn default_noise_scale() -> f64 {
    0.667
}
fn default_noise_scale_duration() -> f64 {
    0.8
}

/// An MMS-TTS (Hugging Face VITS) voice: its configuration and model.
#[derive(Debug, Clone)]
pub struct MmsVoice {
    /// The architecture, as the model was built.
    pub config: VitsConfig,
    /// `noise_scale`, `noise_scale_duration` and `speaking_rate` of `config.json`.
    pub defaults: SynthesisParams,
    /// The model.
    pub model: Vits,
    /// The checkpoint directory.
    pub dir: PathBuf,
}

impl MmsVoice {
    /// Whether `dir` looks like a Hugging Face VITS checkpoint (has `config.json`).
    pub fn is_checkpoint(dir: &Path) -> bool {
        dir.is_dir() && dir.join("config.json").is_file()
    }

    /// Reads `config.json` of `dir` into the architecture and the defaults.
    pub fn read_config(dir: &Path) -> Result<(VitsConfig, SynthesisParams)> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let bad = |reason: String| Error::Config {
            path: path.clone(),
            reason,
        };
        let not_vits = |e: serde_json::Error| bad(format!("not a VITS config.json ({e})"));
        let json: serde_json::Value = serde_json::from_str(&text).map_err(not_vits)?;
        let mut config = VitsConfig::deserialize(&json).map_err(not_vits)?;
        let extra = InferenceDefaults::deserialize(&json).map_err(not_vits)?;
        if extra.hidden_act != "relu" {
            return Err(bad(format!(
                "hidden_act \"{}\" is not supported (MMS checkpoints use \"relu\")",
                extra.hidden_act
            )));
        }
        if extra.depth_separable_channels != 2 {
            return Err(bad(format!(
                "depth_separable_channels {} is not supported (VITS uses 2)",
                extra.depth_separable_channels
            )));
        }
        if config.ffn_kernel_size.is_multiple_of(2) || config.wavenet_kernel_size.is_multiple_of(2)
        {
            return Err(bad("even convolution kernels are not supported".into()));
        }
        if extra.speaking_rate.is_nan() || extra.speaking_rate <= 0.0 {
            return Err(bad(format!(
                "speaking_rate {} must be positive",
                extra.speaking_rate
            )));
        }
        // transformers' stochastic predictor is `hidden_size` wide; the
        // deterministic one is `duration_predictor_filter_channels` wide.
        if config.use_stochastic_duration_prediction {
            config.duration_predictor_filter_channels = config.hidden_size;
        }
        let defaults = SynthesisParams {
            noise_scale: extra.noise_scale,
            length_scale: 1.0 / extra.speaking_rate,
            noise_w: extra.noise_scale_duration,
            speaker: None,
            seed: None,
        };
        Ok((config, defaults))
    }

    /// Loads the checkpoint in `dir` onto `device` in `dtype`.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        for file in CHECKPOINT_FILES {
            if !dir.join(file).is_file() {
                return Err(Error::Config {
                    path: dir.join(file),
                    reason: format!(
                        "missing: a Hugging Face VITS checkpoint directory needs {}",
                        CHECKPOINT_FILES.join(", ")
                    ),
                });
            }
        }
        let (config, defaults) = Self::read_config(dir)?;
        let weights_path = dir.join("model.safetensors");
        let checkpoint = Checkpoint::open(&weights_path, None).map_err(|e| {
            Error::Unsupported(format!(
                "{}: not a readable safetensors file ({e})",
                weights_path.display()
            ))
        })?;
        let backend = HfVitsBackend {
            checkpoint,
            stochastic: config.use_stochastic_duration_prediction,
        };
        let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
        let model = Vits::new(&config, vb).map_err(|e| {
            Error::Unsupported(format!(
                "{}: the weights do not fit the architecture of config.json ({e})",
                weights_path.display()
            ))
        })?;
        Ok(Self {
            config,
            defaults,
            model,
            dir: dir.to_path_buf(),
        })
    }
}

/// Serves VITS-named weights out of a Hugging Face checkpoint.
struct HfVitsBackend {
    /// The checkpoint (weight norm folded on reading).
    checkpoint: Checkpoint,
    /// Which duration predictor the checkpoint has (their `proj` names differ).
    stochastic: bool,
}

impl SimpleBackend for HfVitsBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let hf = hf_name(name, self.stochastic);
        let t = self.checkpoint.tensor(&hf, dev)?;
        // nn.Linear [out, in] read as a 1×1 convolution [out, in, 1].
        let t = if t.dims() != s.dims() && t.elem_count() == s.elem_count() {
            t.reshape(s.clone())?
        } else {
            t
        };
        if t.dims() != s.dims() {
            candle_core::bail!(
                "{hf} has shape {:?}, config.json implies {:?}",
                t.dims(),
                s.dims()
            );
        }
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.checkpoint
            .tensor(&hf_name(name, self.stochastic), dev)?
            .to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.checkpoint.contains(&hf_name(name, self.stochastic))
    }
}

/// `head.rest[0].rest[1]…`.
fn join(head: &str, rest: &[&str]) -> String {
    std::iter::once(head)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join(".")
}

/// The Hugging Face name of a tensor the VITS code asks for by its original
/// name (`stochastic`: which duration predictor the checkpoint has).
pub fn hf_name(vits: &str, stochastic: bool) -> String {
    let parts: Vec<&str> = vits.split('.').collect();
    match parts.as_slice() {
        ["emb_g", rest @ ..] => join("embed_speaker", rest),
        ["enc_p", "emb", rest @ ..] => join("text_encoder.embed_tokens", rest),
        ["enc_p", "proj", rest @ ..] => join("text_encoder.project", rest),
        ["enc_p", "encoder", "attn_layers", i, layer, rest @ ..] => {
            let layer = match *layer {
                "conv_q" => "q_proj",
                "conv_k" => "k_proj",
                "conv_v" => "v_proj",
                "conv_o" => "out_proj",
                other => other, // emb_rel_k, emb_rel_v
            };
            join(
                &format!("text_encoder.encoder.layers.{i}.attention.{layer}"),
                rest,
            )
        }
        ["enc_p", "encoder", "norm_layers_1", i, p] => {
            format!(
                "text_encoder.encoder.layers.{i}.layer_norm.{}",
                norm_param(p)
            )
        }
        ["enc_p", "encoder", "norm_layers_2", i, p] => format!(
            "text_encoder.encoder.layers.{i}.final_layer_norm.{}",
            norm_param(p)
        ),
        ["enc_p", "encoder", "ffn_layers", i, rest @ ..] => join(
            &format!("text_encoder.encoder.layers.{i}.feed_forward"),
            rest,
        ),
        ["dp", rest @ ..] => format!("duration_predictor.{}", dp_name(rest, stochastic)),
        ["flow", "flows", i, rest @ ..] => {
            let i = i.parse::<usize>().map_or(0, |i| i / 2);
            let rest = match rest {
                ["pre", r @ ..] => join("conv_pre", r),
                ["post", r @ ..] => join("conv_post", r),
                ["enc", r @ ..] => join("wavenet", r),
                r => r.join("."),
            };
            format!("flow.flows.{i}.{rest}")
        }
        ["dec", "ups", rest @ ..] => join("decoder.upsampler", rest),
        ["dec", rest @ ..] => join("decoder", rest),
        _ => vits.to_string(),
    }
}

/// `gamma`/`beta` of VITS's layer norm are `weight`/`bias` of `nn.LayerNorm`.
fn norm_param(p: &str) -> &str {
    match p {
        "gamma" => "weight",
        "beta" => "bias",
        other => other,
    }
}

/// Names under `dp.` (after the prefix).
fn dp_name(rest: &[&str], stochastic: bool) -> String {
    let dds = |r: &[&str]| -> String {
        match r {
            ["convs_sep", r @ ..] => join("convs_dilated", r),
            ["convs_1x1", r @ ..] => join("convs_pointwise", r),
            [norms, i, p] => format!("{norms}.{i}.{}", norm_param(p)),
            r => r.join("."),
        }
    };
    // A conv block (the predictor's own, and each conv flow's).
    let block = |r: &[&str]| -> String {
        match r {
            ["pre", r @ ..] => join("conv_pre", r),
            ["proj", r @ ..] => join("conv_proj", r),
            ["convs", r @ ..] => format!("conv_dds.{}", dds(r)),
            r => r.join("."),
        }
    };
    match (rest, stochastic) {
        (["flows", "0", "m"], true) => "flows.0.translate".into(),
        (["flows", "0", "logs"], true) => "flows.0.log_scale".into(),
        (["flows", j, r @ ..], true) => {
            // VITS interleaves Flip modules: its conv flows are 1, 3, 5, …
            let j = j.parse::<usize>().map_or(0, |j| j.div_ceil(2));
            format!("flows.{j}.{}", block(r))
        }
        (r, true) => block(r),
        ([norm @ ("norm_1" | "norm_2"), p], false) => format!("{norm}.{}", norm_param(p)),
        (r, false) => r.join("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names as `transformers` 5.24's `VitsModel` stores them (see
    /// `tools/make_mms_fixtures.py`).
    #[test]
    fn maps_vits_names_to_transformers_names() {
        for (vits, hf) in [
            ("enc_p.emb.weight", "text_encoder.embed_tokens.weight"),
            (
                "enc_p.encoder.attn_layers.1.conv_o.bias",
                "text_encoder.encoder.layers.1.attention.out_proj.bias",
            ),
            (
                "enc_p.encoder.attn_layers.0.emb_rel_k",
                "text_encoder.encoder.layers.0.attention.emb_rel_k",
            ),
            (
                "enc_p.encoder.norm_layers_2.3.gamma",
                "text_encoder.encoder.layers.3.final_layer_norm.weight",
            ),
            (
                "enc_p.encoder.ffn_layers.0.conv_2.weight",
                "text_encoder.encoder.layers.0.feed_forward.conv_2.weight",
            ),
            ("enc_p.proj.bias", "text_encoder.project.bias"),
            ("dp.pre.weight", "duration_predictor.conv_pre.weight"),
            (
                "dp.convs.convs_sep.2.weight",
                "duration_predictor.conv_dds.convs_dilated.2.weight",
            ),
            (
                "dp.convs.norms_1.0.beta",
                "duration_predictor.conv_dds.norms_1.0.bias",
            ),
            ("dp.flows.0.logs", "duration_predictor.flows.0.log_scale"),
            (
                "dp.flows.3.convs.convs_1x1.1.bias",
                "duration_predictor.flows.2.conv_dds.convs_pointwise.1.bias",
            ),
            (
                "dp.flows.7.proj.weight",
                "duration_predictor.flows.4.conv_proj.weight",
            ),
            ("dp.cond.weight", "duration_predictor.cond.weight"),
            (
                "flow.flows.4.enc.in_layers.1.weight",
                "flow.flows.2.wavenet.in_layers.1.weight",
            ),
            ("flow.flows.6.post.bias", "flow.flows.3.conv_post.bias"),
            ("dec.ups.2.weight", "decoder.upsampler.2.weight"),
            (
                "dec.resblocks.5.convs2.1.bias",
                "decoder.resblocks.5.convs2.1.bias",
            ),
            ("emb_g.weight", "embed_speaker.weight"),
        ] {
            assert_eq!(hf_name(vits, true), hf, "{vits}");
        }
        // The deterministic predictor keeps VITS's names, norms renamed.
        assert_eq!(
            hf_name("dp.proj.weight", false),
            "duration_predictor.proj.weight"
        );
        assert_eq!(
            hf_name("dp.norm_2.gamma", false),
            "duration_predictor.norm_2.weight"
        );
    }
}

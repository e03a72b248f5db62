//! CAMPPlus (S3Gen's speaker encoder) against `chatterbox-tts` 0.1.7 on
//! small random weights with random batch-norm statistics
//! (`tools/make_s3gen_goldens.py`): stage by stage from the reference's
//! features, and end to end from the recording through Vivace's Kaldi
//! filterbank.

use std::path::PathBuf;

mod common;

use common::check_within;

use candle_core::{DType, Device, Tensor};
use vivace_models::chatterbox::campplus::{CampPlus, CampPlusConfig};
use vivace_models::nn::checkpoint::Checkpoint;

/// The committed small fixture, or the directory in `VIVACE_CAMPPLUS_DIR`
/// (the real-size check by hand: `tools/make_s3gen_goldens.py --real-size`
/// writes `OUT/campplus`).
fn fixture(name: &str) -> PathBuf {
    common::fixture("campplus", Some("VIVACE_CAMPPLUS_DIR"), name)
}

fn check(stage: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
    check_within(stage, got, want, tolerance);
}

#[test]
fn campplus_matches_reference() {
    let cfg: CampPlusConfig =
        serde_json::from_str(&std::fs::read_to_string(fixture("config.json")).unwrap()).unwrap();
    let vb = Checkpoint::open(&fixture("campplus.safetensors"), None)
        .unwrap()
        .var_builder(DType::F32, &Device::Cpu);
    let model = CampPlus::new(&cfg, vb.pp("speaker_encoder")).expect("loads");
    let g = candle_core::safetensors::load(fixture("goldens.safetensors"), &Device::Cpu).unwrap();

    let features = &g["features"];
    check(
        "head",
        &model.head(features).unwrap().squeeze(0).unwrap(),
        &g["head"],
        1e-4,
    );
    let (tdnn, frames) = model.stages(features).unwrap();
    check("tdnn", &tdnn.squeeze(0).unwrap(), &g["tdnn"], 1e-4);
    check("frames", &frames.squeeze(0).unwrap(), &g["frames"], 1e-4);
    check(
        "x-vector",
        &model.embed(features).unwrap(),
        &g["embedding"],
        1e-4,
    );

    // From the recording, through Vivace's filterbank.
    let wav: Vec<f32> = g["wav"].to_vec1().unwrap();
    let fbank = vivace_frontend::kaldi_fbank::KaldiFbank::new(80);
    let feats = vivace_frontend::kaldi_fbank::mean_normalized(&fbank.compute(&wav), 80);
    let rows = feats.len() / 80;
    let feats = Tensor::from_vec(feats, (rows, 80), &Device::Cpu).unwrap();
    check("features", &feats, features, 1e-4);
    check(
        "x-vector from audio",
        &model.embed(&feats).unwrap(),
        &g["embedding"],
        1e-3,
    );
}

/// The loader names the file and the tensor when a checkpoint does not fit.
#[test]
fn wrong_checkpoint_is_a_clear_error() {
    let s3gen = common::fixture("s3gen", None, "s3gen.safetensors");
    let err = CampPlus::load(&s3gen, &CampPlusConfig::chatterbox(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s3gen.safetensors") && err.contains("speaker_encoder."),
        "{err}"
    );
    let small: CampPlusConfig =
        serde_json::from_str(&std::fs::read_to_string(fixture("config.json")).unwrap()).unwrap();
    let err = CampPlus::load(
        &fixture("campplus.safetensors"),
        &CampPlusConfig::chatterbox(),
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("campplus.safetensors") && err.contains("shape"),
        "{err}"
    );
    assert!(CampPlus::load(&fixture("campplus.safetensors"), &small, &Device::Cpu).is_ok());
}

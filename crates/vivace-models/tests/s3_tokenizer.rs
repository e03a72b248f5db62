//! The S3 speech tokenizer v2 against `chatterbox-tts` 0.1.7 /
//! `s3tokenizer` 0.3.0 on small random weights
//! (`tools/make_s3gen_goldens.py`): the encoder's output, FSQ's values
//! before rounding, and the tokens, from the reference's log-mel and from
//! the recording through Vivace's front end.

use std::path::PathBuf;

mod common;

use common::check_within;

use candle_core::{DType, Device, Tensor};
use vivace_models::chatterbox::s3_tokenizer::{S3Tokenizer, S3TokenizerConfig, MELS};

/// The committed small fixture, or `VIVACE_S3_TOKENIZER_DIR` (the real-size
/// check by hand: `tools/make_s3gen_goldens.py --real-size` writes
/// `OUT/s3_tokenizer`).
fn fixture(name: &str) -> PathBuf {
    common::fixture("s3_tokenizer", Some("VIVACE_S3_TOKENIZER_DIR"), name)
}

fn check(stage: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
    check_within(stage, got, want, tolerance);
}

fn same_tokens(stage: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{stage}: token count");
    let same = got.iter().zip(want).filter(|(a, b)| a == b).count();
    eprintln!("{stage}: {same}/{} tokens identical", want.len());
    assert_eq!(same, want.len(), "{stage}: tokens differ");
}

#[test]
fn tokenizer_matches_reference() {
    let cfg: S3TokenizerConfig =
        serde_json::from_str(&std::fs::read_to_string(fixture("config.json")).unwrap()).unwrap();
    let model =
        S3Tokenizer::load(&fixture("tokenizer.safetensors"), &cfg, &Device::Cpu).expect("loads");
    let g = candle_core::safetensors::load(fixture("goldens.safetensors"), &Device::Cpu).unwrap();
    let want: Vec<u32> = g["tokens"]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|t| t as u32)
        .collect();

    // From the reference's log-mel.
    let hidden = model.encode(&g["mel"]).unwrap();
    check("encoder", &hidden.squeeze(0).unwrap(), &g["encoder"], 1e-4);
    check(
        "before rounding",
        &model.pre_round(&hidden).unwrap(),
        &g["pre_round"],
        1e-4,
    );
    same_tokens("tokens", &model.tokenize(&g["mel"]).unwrap(), &want);

    // From the 16 kHz recording through Vivace's log-mel.
    let wav: Vec<f32> = g["wav"].to_vec1().unwrap();
    let mel = vivace_frontend::mel::MelSpectrogram::s3_tokenizer()
        .s3_tokenizer_log(&wav)
        .unwrap();
    let frames = mel.len() / MELS;
    let mel = Tensor::from_vec(mel, (frames, MELS), &Device::Cpu).unwrap();
    check("log-mel", &mel, &g["mel"], 1e-5);
    same_tokens("tokens from audio", &model.tokenize(&mel).unwrap(), &want);
}

/// Inputs the tokenizer does not take are errors, not panics.
#[test]
fn bad_inputs_are_errors() {
    let cfg: S3TokenizerConfig =
        serde_json::from_str(&std::fs::read_to_string(fixture("config.json")).unwrap()).unwrap();
    let model = S3Tokenizer::load(&fixture("tokenizer.safetensors"), &cfg, &Device::Cpu).unwrap();
    let too_long = Tensor::zeros((3001, MELS), DType::F32, &Device::Cpu).unwrap();
    assert!(model
        .tokenize(&too_long)
        .unwrap_err()
        .to_string()
        .contains("30 s"));
    let wrong_bands = Tensor::zeros((10, 80), DType::F32, &Device::Cpu).unwrap();
    assert!(model.tokenize(&wrong_bands).is_err());
    let err = S3Tokenizer::load(
        &fixture("tokenizer.safetensors"),
        &S3TokenizerConfig::v2(),
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("tokenizer.safetensors") && err.contains("shape"),
        "{err}"
    );
}

//! MMS-TTS (Hugging Face `VitsModel`) checkpoints against `transformers`, on
//! the small random-weight checkpoints of `tools/make_mms_fixtures.py`:
//! - `tiny-sdp`: stochastic durations, blanks, 16 kHz, speaking rates 1 and 1.5;
//! - `tiny-dp-multi`: deterministic durations, three speakers, no blanks, 22050 Hz.
//!
//! Each render (both noise scales 0) must match `VitsModel`'s waveform within
//! a relative L2 error of 1e-3 at the same length, and Vivace's tokenizer must
//! produce the ids `VitsTokenizer` produced.

use std::path::PathBuf;

use candle_core::{DType, Device};
use vivace_frontend::vits_tokenizer::VitsTokenizer;
use vivace_models::mms::MmsVoice;
use vivace_models::vits::SynthesisParams;

use crate::util::{fixtures, ids, relative_l2};

fn checkpoint(name: &str) -> PathBuf {
    fixtures().join("mms").join(name)
}

/// Renders every golden of the checkpoint in `dir`; returns (renders, worst error).
fn check_goldens(dir: &std::path::Path) -> (usize, f64) {
    let name = dir.display();
    let mut worst = 0f64;
    let mut renders = 0;
    {
        let voice = MmsVoice::load(dir, &Device::Cpu, DType::F32).expect("load checkpoint");
        let tokenizer = VitsTokenizer::from_dir(dir).expect("tokenizer");
        let text = std::fs::read_to_string(dir.join("goldens.json")).expect("goldens");
        let goldens: serde_json::Value = serde_json::from_str(&text).expect("parse goldens");
        for golden in goldens.as_array().expect("array") {
            let text = golden["text"].as_str().expect("text");
            let want_ids = ids(golden);
            assert_eq!(
                tokenizer.encode(text).expect("encode"),
                want_ids,
                "{name}: ids of {text:?}"
            );
            let params = SynthesisParams {
                noise_scale: 0.0,
                noise_w: 0.0,
                length_scale: 1.0 / golden["speaking_rate"].as_f64().expect("rate"),
                speaker: golden["speaker"].as_u64().map(|s| s as u32),
                seed: None,
            };
            let got = voice
                .model
                .synthesize(&want_ids, &params)
                .expect("synthesize");
            let want = crate::util::read_f32(&dir.join(golden["file"].as_str().expect("file")));
            assert_eq!(got.len(), want.len(), "{name}: length of {text:?}");
            let err = relative_l2(&got, &want);
            assert!(err <= 1e-3, "{name}: {text:?} relative L2 {err}");
            worst = worst.max(err);
            renders += 1;
        }
    }
    (renders, worst)
}

#[test]
fn mms_checkpoints_match_transformers() {
    let (a, worst_a) = check_goldens(&checkpoint("tiny-sdp"));
    let (b, worst_b) = check_goldens(&checkpoint("tiny-dp-multi"));
    assert_eq!(a + b, 7);
    eprintln!(
        "MMS parity: {} renders, worst relative L2 {:.2e}",
        a + b,
        worst_a.max(worst_b)
    );
}

/// The real-size checkpoint (`tools/make_mms_fixtures.py --real DIR`, not
/// committed): `VIVACE_MMS_CHECKPOINT=DIR/mms-real-size cargo test --release
/// -p vivace --test integration real_size -- --ignored --nocapture`.
#[test]
#[ignore = "needs the real-size checkpoint from tools/make_mms_fixtures.py --real"]
fn real_size_checkpoint_matches_transformers() {
    let dir = std::env::var_os("VIVACE_MMS_CHECKPOINT").expect("VIVACE_MMS_CHECKPOINT");
    let (renders, worst) = check_goldens(std::path::Path::new(&dir));
    assert!(renders > 0);
    eprintln!("MMS real size: {renders} renders, worst relative L2 {worst:.2e}");
}

#[test]
fn checkpoint_defaults_come_from_config_json() {
    let voice =
        MmsVoice::load(&checkpoint("tiny-sdp"), &Device::Cpu, DType::F32).expect("load checkpoint");
    assert_eq!(voice.config.sampling_rate, 16000);
    assert!((voice.defaults.noise_scale - 0.667).abs() < 1e-9);
    assert!((voice.defaults.noise_w - 0.8).abs() < 1e-9);
    assert!((voice.defaults.length_scale - 1.0).abs() < 1e-9);
    // Values other than the built-in defaults, so the fields are really read.
    let scratch = crate::util::scratch();
    let dir = scratch.path().join("ckpt");
    std::fs::create_dir(&dir).expect("mkdir");
    for entry in std::fs::read_dir(checkpoint("tiny-sdp")).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config");
    let mut config: serde_json::Value = serde_json::from_str(&text).expect("parse");
    config["speaking_rate"] = 2.0.into();
    config["noise_scale"] = 0.5.into();
    config["noise_scale_duration"] = 0.25.into();
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
    let (_, defaults) = MmsVoice::read_config(&dir).expect("read config");
    assert_eq!(
        (
            defaults.length_scale,
            defaults.noise_scale,
            defaults.noise_w
        ),
        (0.5, 0.5, 0.25)
    );
}

#[test]
fn broken_checkpoints_are_clear_errors() {
    let scratch = crate::util::scratch();
    let dir = scratch.path().join("ckpt");
    std::fs::create_dir(&dir).expect("mkdir");
    for file in ["config.json", "vocab.json", "tokenizer_config.json"] {
        std::fs::copy(checkpoint("tiny-sdp").join(file), dir.join(file)).expect("copy");
    }
    // No weights.
    let err = MmsVoice::load(&dir, &Device::Cpu, DType::F32).expect_err("no weights");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    // Weights of another architecture than config.json says.
    std::fs::copy(
        checkpoint("tiny-dp-multi").join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .expect("copy");
    let err = MmsVoice::load(&dir, &Device::Cpu, DType::F32).expect_err("mismatch");
    assert!(err.to_string().contains("do not fit"), "{err}");
    // Not safetensors at all.
    std::fs::write(dir.join("model.safetensors"), b"not a tensor file").expect("write");
    let err = MmsVoice::load(&dir, &Device::Cpu, DType::F32).expect_err("garbage");
    assert!(err.to_string().contains("safetensors"), "{err}");
    // A config that is not a VITS config.
    std::fs::write(dir.join("config.json"), br#"{"model_type": "bert"}"#).expect("write");
    let err = MmsVoice::load(&dir, &Device::Cpu, DType::F32).expect_err("bad config");
    assert!(err.to_string().contains("config.json"), "{err}");
}

//! Piper variants we have no real voice for, on small random-weight voices
//! exported exactly as Piper exports (`tools/make_fixture_voices.py`):
//! - `tiny-multi-rb1`: three speakers, HiFi-GAN resblock 1 ("high"), stochastic durations;
//! - `tiny-single-rb2-dp`: resblock 2, the deterministic duration predictor, 16 kHz.
//!
//! Each render (noise 0) must match onnxruntime running the same `.onnx`.

use std::path::PathBuf;

use candle_core::{DType, Device};
use vivace_models::piper::PiperVoice;
use vivace_models::vits::SynthesisParams;

use crate::util::{fixtures, relative_l2};

fn voices_dir() -> PathBuf {
    fixtures().join("voices")
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(voices_dir().join("fixture_voices.json")).expect("manifest");
    serde_json::from_str(&text).expect("parse manifest")
}

fn waveform(file: &str) -> Vec<f32> {
    crate::util::read_f32(&voices_dir().join(file))
}

#[test]
fn fixture_voices_match_onnxruntime() {
    let manifest = manifest();
    let voices = manifest["voices"].as_array().expect("voices");
    assert_eq!(voices.len(), 2);
    for voice in voices {
        let name = voice["name"].as_str().expect("name");
        let onnx = voices_dir().join(voice["onnx_file"].as_str().expect("onnx_file"));
        let loaded = PiperVoice::load(&onnx, &Device::Cpu, DType::F32)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let cfg = loaded.model.config();
        assert_eq!(
            cfg.num_speakers,
            voice["num_speakers"].as_u64().expect("speakers") as usize
        );
        assert_eq!(
            cfg.sampling_rate,
            voice["sample_rate"].as_u64().expect("rate") as u32
        );
        for render in voice["renders"].as_array().expect("renders") {
            let ids: Vec<i64> = render["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_i64().expect("id"))
                .collect();
            let params = SynthesisParams {
                noise_scale: render["noise_scale"].as_f64().expect("noise_scale"),
                length_scale: render["length_scale"].as_f64().expect("length_scale"),
                noise_w: render["noise_w"].as_f64().expect("noise_w"),
                speaker: render["sid"].as_u64().map(|s| s as u32),
                seed: None,
            };
            let got = loaded.model.synthesize(&ids, &params).expect("synthesize");
            let file = render["file"].as_str().expect("file");
            let want = waveform(file);
            assert_eq!(got.len(), want.len(), "{file}: length");
            let err = relative_l2(&got, &want);
            assert!(err <= 1e-3, "{file}: relative L2 error {err:.3e}");
            eprintln!("{file}: relative L2 error {err:.2e}");
        }
    }
}

#[test]
fn speakers_are_chosen_by_name_or_id_and_checked() {
    let onnx = voices_dir().join("tiny-multi-rb1.onnx");
    let voice = PiperVoice::load(&onnx, &Device::Cpu, DType::F32).expect("load");
    assert_eq!(voice.config.speaker("carol").expect("by name"), 2);
    assert_eq!(voice.config.speaker("1").expect("by id"), 1);
    let err = voice.config.speaker("dave").unwrap_err().to_string();
    assert!(
        err.contains("alice (0)") && err.contains("carol (2)"),
        "{err}"
    );
    let params = SynthesisParams {
        speaker: Some(3),
        ..voice.config.default_params()
    };
    let err = voice
        .model
        .synthesize(&[1, 0, 2], &params)
        .unwrap_err()
        .to_string();
    assert!(err.contains("speaker 3"), "{err}");
}

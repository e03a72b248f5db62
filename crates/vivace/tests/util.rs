//! Shared helpers: the default voice, the golden fixtures, scratch directories.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vivace::voice_store::{VoiceStore, DEFAULT_VOICE};

/// The default voice's `.onnx`, fetched once per test run if missing.
pub fn default_voice() -> &'static Path {
    static VOICE: OnceLock<PathBuf> = OnceLock::new();
    VOICE.get_or_init(|| {
        let store = VoiceStore::from_env().expect("a cache directory (HOME or XDG_CACHE_HOME)");
        store
            .ensure(&DEFAULT_VOICE)
            .unwrap_or_else(|e| panic!("the tests need the default voice: {e}"))
    })
}

/// The fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `piper_goldens.json`, written by `tools/make_goldens.py`.
pub fn goldens() -> serde_json::Value {
    let path = fixtures().join("piper_goldens.json");
    let text = std::fs::read_to_string(&path).expect("read piper_goldens.json");
    serde_json::from_str(&text).expect("parse piper_goldens.json")
}

/// A golden waveform (raw little-endian f32).
pub fn golden_waveform(file: &str) -> Vec<f32> {
    read_f32(&fixtures().join(file))
}

/// A file of raw little-endian f32 values (how every tool writes goldens).
pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `||a - b|| / ||b||` over equal lengths (the library's, which `validate` uses).
pub fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "waveform lengths differ");
    vivace::validate::relative_l2(a, b)
}

/// A fresh scratch directory, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// The ids of a golden sentence.
pub fn ids(sentence: &serde_json::Value) -> Vec<i64> {
    sentence["ids"]
        .as_array()
        .expect("ids array")
        .iter()
        .map(|v| v.as_i64().expect("integer id"))
        .collect()
}

/// The `vivace` binary with the user's `VIVACE_*` choices of voice, device
/// and precision removed.
pub fn vivace() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vivace"));
    cmd.env_remove("VIVACE_VOICE")
        .env_remove("VIVACE_DEVICE")
        .env_remove("VIVACE_PRECISION");
    cmd
}

/// A finished command's stderr, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The check called `name` in a `vivace validate --json` report.
pub fn validate_check(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {report}"))
        .clone()
}

/// A multilingual Chatterbox folder: the 23-language T3 fixture with the
/// English T3 fixture's small S3Gen (its `conds.pt` carries both parts).
pub fn multilingual_chatterbox() -> tempfile::TempDir {
    let dir = scratch();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vivace-models/tests/fixtures");
    for f in [
        "t3_mtl23ls_v2.safetensors",
        "grapheme_mtl_merged_expanded_v1.json",
        "conds.pt",
    ] {
        std::fs::copy(models.join("t3_mtl").join(f), dir.path().join(f)).expect("copy");
    }
    for f in ["s3gen.safetensors", "s3gen_config.json"] {
        std::fs::copy(models.join("t3").join(f), dir.path().join(f)).expect("copy");
    }
    dir
}

/// An English Chatterbox folder that can clone: the T3 fixture, its small
/// S3Gen with the small speech tokenizer and CAMPPlus of the model tests
/// stored beside the flow (as the published `s3gen.safetensors` stores
/// them), their sizes in `s3gen_config.json`, and a voice encoder whose
/// 64-wide LSTM (the small fixture's) ends in a 256-wide projection, the
/// width T3 takes (fixed pseudo-random values: only the plumbing is
/// under test here).
pub fn cloning_chatterbox() -> tempfile::TempDir {
    use candle_core::{Device, Tensor};
    let dir = scratch();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vivace-models/tests/fixtures");
    for f in ["t3_cfg.safetensors", "tokenizer.json", "conds.pt"] {
        std::fs::copy(models.join("t3").join(f), dir.path().join(f)).expect("copy");
    }
    let load = |path: PathBuf| {
        candle_core::safetensors::load(&path, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut s3gen = load(models.join("t3/s3gen.safetensors"));
    s3gen.extend(load(models.join("s3_tokenizer/tokenizer.safetensors")));
    s3gen.extend(load(models.join("campplus/campplus.safetensors")));
    candle_core::safetensors::save(&s3gen, dir.path().join("s3gen.safetensors")).expect("save");
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
    };
    let mut config = json(models.join("t3/s3gen_config.json"));
    config["tokenizer"] = json(models.join("s3_tokenizer/config.json"));
    config["speaker_encoder"] = json(models.join("campplus/config.json"));
    std::fs::write(dir.path().join("s3gen_config.json"), config.to_string()).expect("write");
    let mut ve = load(fixtures().join("chatterbox_ve/ve.safetensors"));
    let hidden = ve["proj.weight"].dims()[1];
    let mut state = 0x2545_f491_u32;
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 * 0.4 - 0.2
            })
            .collect()
    };
    let weight =
        Tensor::from_vec(values(256 * hidden), (256, hidden), &Device::Cpu).expect("weight");
    let bias = Tensor::from_vec(values(256), 256, &Device::Cpu).expect("bias");
    ve.insert("proj.weight".into(), weight);
    ve.insert("proj.bias".into(), bias);
    candle_core::safetensors::save(&ve, dir.path().join("ve.safetensors")).expect("save");
    dir
}

/// `vivace say --seed 1 --voice VOICE TEXT` into a WAV in `dir`, and its
/// samples (the test fails if the command does).
pub fn say_samples(voice: &Path, text: &str, dir: &Path) -> Vec<i16> {
    let wav = dir.join("said.wav");
    let out = vivace()
        .args(["say", "--seed", "1", "--voice"])
        .arg(voice)
        .arg("-f")
        .arg(&wav)
        .arg(text)
        .output()
        .expect("run vivace say");
    assert!(out.status.success(), "{}", stderr(&out));
    hound::WavReader::open(&wav)
        .expect("a WAV")
        .into_samples()
        .map(|s| s.expect("sample"))
        .collect()
}

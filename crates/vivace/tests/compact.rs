//! Compact voices (`vivace convert`) and synthesis on a given alignment,
//! against Piper's goldens: its waveforms and the durations its own ONNX
//! graph decides (`tools/make_duration_goldens.py`).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use candle_core::{DType, Device};
use vivace::synth::Synthesizer;
use vivace::validate::tolerance;
use vivace_models::vits::SynthesisParams;
use vivace_perf::plan::Precision;

use crate::util::{
    default_voice, fixtures, golden_waveform, relative_l2, scratch, stderr, validate_check, vivace,
};

/// One golden render with Piper's alignment.
struct Render {
    file: String,
    ids: Vec<i64>,
    length_scale: f64,
    durations: Vec<u32>,
}

/// Every render of `piper_durations.json`.
fn piper_renders() -> Vec<Render> {
    let path = fixtures().join("piper_durations.json");
    let text = std::fs::read_to_string(&path).expect("read piper_durations.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse piper_durations.json");
    let renders: Vec<Render> = json["renders"]
        .as_array()
        .expect("renders")
        .iter()
        .map(|r| Render {
            file: r["file"].as_str().expect("file").to_string(),
            ids: r["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_i64().expect("id"))
                .collect(),
            length_scale: r["length_scale"].as_f64().expect("length_scale"),
            durations: r["durations"]
                .as_array()
                .expect("durations")
                .iter()
                .map(|v| v.as_u64().expect("duration") as u32)
                .collect(),
        })
        .collect();
    assert!(renders.len() >= 10, "only {} renders", renders.len());
    renders
}

fn params(length_scale: f64) -> SynthesisParams {
    SynthesisParams {
        noise_scale: 0.0,
        length_scale,
        noise_w: 0.0,
        speaker: None,
        seed: None,
    }
}

fn load(path: &Path) -> Synthesizer {
    let store = vivace::voice_store::VoiceStore::from_env().expect("cache directory");
    Synthesizer::load(path, &Device::Cpu, DType::F32, &store.espeak_data_dir())
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

/// The default voice converted by this build's `vivace convert` with
/// `dtype`, once per test run, kept in cargo's per-target scratch folder
/// (replaced by the next run, not left in /tmp).
fn converted(dtype: &str) -> PathBuf {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compact-voices");
    let out = dir.join(format!("joe-{dtype}.safetensors"));
    if !done.iter().any(|d| d == dtype) {
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        let o = vivace()
            .arg("convert")
            .arg(default_voice())
            .args(["--dtype", dtype, "--no-check", "--force", "-o"])
            .arg(&out)
            .output()
            .expect("run vivace convert");
        assert!(o.status.success(), "{}", stderr(&o));
        done.push(dtype.to_string());
    }
    out
}

/// Vivace's duration predictor decides Piper's durations for every golden
/// render, and synthesis on them reproduces Piper's waveform.
#[test]
fn durations_equal_pipers_and_its_alignment_gives_its_audio() {
    let synth = load(default_voice());
    let model = synth.vits().expect("a VITS voice").model();
    let mut worst = 0f64;
    for r in piper_renders() {
        let p = params(r.length_scale);
        assert_eq!(
            model.durations(&r.ids, &p).expect("durations"),
            r.durations,
            "{}",
            r.file
        );
        let got = model
            .synthesize_with_durations(&r.ids, &p, &r.durations)
            .expect("synthesize");
        let err = relative_l2(&got, &golden_waveform(&r.file));
        assert!(err <= 1e-3, "{}: relative L2 error {err:.2e}", r.file);
        worst = worst.max(err);
    }
    eprintln!("on Piper's alignment: worst relative L2 error {worst:.2e}");
    let e = model
        .synthesize_with_durations(&[1, 0, 2], &params(1.0), &[1, 1])
        .expect_err("two durations for three ids");
    assert!(e.to_string().contains("one per id"), "{e}");
    let e = model
        .synthesize_with_durations(&[1, 0, 2], &params(1.0), &[1, u32::MAX, 1])
        .expect_err("an absurd duration");
    assert!(e.to_string().contains("at most"), "{e}");
}

/// f32 storage is lossless: the compact voice speaks sample for sample like
/// its `.onnx`, in half the files.
#[test]
fn f32_compact_voice_speaks_exactly_like_its_onnx() {
    let onnx = load(default_voice());
    let compact = load(&converted("f32"));
    let r = &piper_renders()[0];
    let p = params(r.length_scale);
    let want = onnx
        .vits()
        .expect("a VITS voice")
        .model()
        .synthesize(&r.ids, &p)
        .expect("onnx");
    let got = compact
        .vits()
        .expect("a VITS voice")
        .model()
        .synthesize(&r.ids, &p)
        .expect("compact");
    assert_eq!(got, want);
    assert_eq!(compact.sample_rate(), 22050);
    assert_eq!(
        compact.sentences("Hello world.").expect("phonemize")[0].ids,
        r.ids,
        "the config travels inside the file"
    );
}

/// f16 storage stays within the bound `validate` applies to it on every
/// golden render, on Piper's alignment.
#[test]
fn f16_compact_voice_matches_piper_within_its_bound() {
    let compact = load(&converted("f16"));
    let model = compact.vits().expect("a VITS voice").model();
    let bound = tolerance(DType::F16, Precision::F32);
    let mut worst = (0f64, String::new());
    for r in piper_renders() {
        let got = model
            .synthesize_with_durations(&r.ids, &params(r.length_scale), &r.durations)
            .expect("synthesize");
        let err = relative_l2(&got, &golden_waveform(&r.file));
        assert!(
            err <= bound,
            "{}: relative L2 error {err:.2e} > {bound:.0e}",
            r.file
        );
        if err > worst.0 {
            worst = (err, r.file.clone());
        }
    }
    eprintln!(
        "f16 compact voice: worst relative L2 error {:.2e} ({})",
        worst.0, worst.1
    );
}

/// `vivace convert` reports the size and the measured fidelity, and the
/// file speaks, validates and is listed as an installed voice.
#[test]
fn converted_voice_speaks_validates_and_installs() {
    let dir = scratch();
    let out = dir.path().join("joe.safetensors");
    let o = vivace()
        .arg("convert")
        .arg(default_voice())
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .output()
        .expect("run vivace convert");
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(report["stored_dtype"], "f16");
    let (source, written) = (
        report["source_bytes"].as_u64().expect("source_bytes"),
        report["output_bytes"].as_u64().expect("output_bytes"),
    );
    assert_eq!(written, std::fs::metadata(&out).expect("output").len());
    assert!(written * 100 < source * 52, "{written} of {source} bytes");
    let err = report["fidelity"]["relative_l2"]
        .as_f64()
        .expect("fidelity");
    assert!(
        err > 0.0 && err <= tolerance(DType::F16, Precision::F32),
        "{err}"
    );

    let wav = dir.path().join("hello.wav");
    let o = vivace()
        .args(["say", "Hello world.", "--voice"])
        .arg(&out)
        .arg("-f")
        .arg(&wav)
        .output()
        .expect("run vivace say");
    assert!(o.status.success(), "{}", stderr(&o));
    let reader = hound::WavReader::open(&wav).expect("a WAV");
    assert_eq!(reader.spec().sample_rate, 22050);
    assert!(reader.duration() > 11_025, "{} samples", reader.duration());

    let o = vivace()
        .args(["validate", "--json", "--device", "cpu", "--voice"])
        .arg(&out)
        .output()
        .expect("run vivace validate");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let end_to_end = validate_check(&report, "end to end");
    assert_eq!(end_to_end["status"], "PASS", "{end_to_end}");
    assert!(
        end_to_end["detail"]
            .as_str()
            .is_some_and(|d| d.contains("limit 5.1e-2")),
        "{end_to_end}"
    );

    // Installed under the store, it is found by name and listed as compact.
    let cache = dir.path().join("cache");
    let installed = cache.join("vivace/voices/joe");
    std::fs::create_dir_all(&installed).expect("mkdir");
    std::fs::rename(&out, installed.join("joe.safetensors")).expect("move");
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .args(["voices", "--json"])
        .output()
        .expect("run vivace voices");
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(list[0]["name"], "joe");
    assert_eq!(list[0]["format"], "compact");
    assert_eq!(list[0]["sample_rate"], 22050);
    assert_eq!(list[0]["language"], "en_US");
}

/// Every wrong use is exit code 1 and a message naming the input and the fix.
#[test]
fn bad_conversions_and_bad_compact_files_are_clear_errors() {
    let dir = scratch();
    let path = |name: &str| dir.path().join(name);
    let convert = |extra: &[&str], out: &Path| {
        vivace()
            .arg("convert")
            .arg(default_voice())
            .args(extra)
            .arg("-o")
            .arg(out)
            .output()
            .expect("run vivace convert")
    };
    let cases: Vec<(Output, &str)> = vec![
        (
            convert(&["--dtype", "bf16"], &path("a.safetensors")),
            "f16 or f32",
        ),
        (
            convert(&["--dtype", "int8"], &path("a.safetensors")),
            "f16 or f32",
        ),
        (convert(&[], &path("a.onnx")), "must end in .safetensors"),
        (
            vivace()
                .args(["convert", "--no-check"])
                .arg(converted("f16"))
                .arg("-o")
                .arg(path("b.safetensors"))
                .output()
                .expect("run"),
            "already a compact voice",
        ),
    ];
    for (o, want) in &cases {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        assert!(stderr(o).contains(want), "wanted {want:?}: {}", stderr(o));
    }
    assert!(!path("a.safetensors").exists() && !path("a.onnx").exists());

    // An existing file is kept unless --force.
    std::fs::write(path("kept.safetensors"), b"mine").expect("write");
    let o = convert(&["--no-check"], &path("kept.safetensors"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(path("kept.safetensors")).expect("read"),
        b"mine"
    );

    // Files that are not compact voices, given to `say`.
    let full = std::fs::read(converted("f16")).expect("read");
    std::fs::write(path("truncated.safetensors"), &full[..full.len() / 2]).expect("write");
    std::fs::write(path("text.safetensors"), b"hello").expect("write");
    let plain = path("plain.safetensors");
    let t = candle_core::Tensor::zeros(4, DType::F32, &Device::Cpu).expect("tensor");
    candle_core::safetensors::save(&std::collections::HashMap::from([("w", t)]), &plain)
        .expect("save");
    for (name, want) in [
        ("truncated.safetensors", "truncated"),
        ("text.safetensors", "not a complete safetensors file"),
        ("plain.safetensors", "vivace convert"),
    ] {
        let o = vivace()
            .args(["say", "Hi.", "--voice"])
            .arg(path(name))
            .arg("-f")
            .arg(path("out.wav"))
            .output()
            .expect("run vivace say");
        assert_eq!(o.status.code(), Some(1), "{name}");
        let e = stderr(&o);
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

//! Every CPU kernel path this machine runs (`VIVACE_CPU_KERNEL`: portable,
//! AVX2, AVX2 with AVX-VNNI, AVX-512, AVX-512 with VNNI), end to end
//! through `vivace say`, each against its reference: the default Piper
//! voice against onnxruntime's waveform (piper-tts 1.8), a Kokoro voice
//! against kokoro-onnx's. The path is fixed per process, so each runs in
//! its own.

use vivace_models::nn::cpu_kernel::{self, KernelPath};

use crate::util::{golden_waveform, goldens, relative_l2, stderr, vivace};

/// The paths this CPU runs, narrowest first.
fn paths() -> Vec<KernelPath> {
    let here = cpu_kernel::Features::of_this_cpu();
    KernelPath::ALL
        .into_iter()
        .filter(|&p| here.runs(p))
        .collect()
}

/// `vivace say ARGS` on kernel path `path`: raw f32 samples, and what it
/// logged.
fn say_raw_logged(path: KernelPath, args: &[&str]) -> (Vec<f32>, String) {
    let out = vivace()
        .env(cpu_kernel::ENV, path.name())
        .args([
            "say",
            "--output-raw",
            "--sample-format",
            "f32",
            "--no-normalize",
        ])
        .args(args)
        .output()
        .expect("run vivace say");
    assert!(out.status.success(), "{path}: {}", stderr(&out));
    let samples = out
        .stdout
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (samples, stderr(&out))
}

/// `vivace say ARGS` on kernel path `path`: raw f32 samples.
fn say_raw(path: KernelPath, args: &[&str]) -> Vec<f32> {
    say_raw_logged(path, args).0
}

/// The first golden case's text and onnxruntime's waveform for it.
fn piper_golden() -> (String, Vec<f32>) {
    let g = goldens();
    let case = &g["cases"][0];
    let file = case["sentences"][0]["renders"][0]["file"]
        .as_str()
        .expect("file");
    (
        case["text"].as_str().expect("text").to_string(),
        golden_waveform(file),
    )
}

#[test]
fn piper_matches_onnxruntime_on_every_kernel_path() {
    let (text, want) = piper_golden();
    for path in paths() {
        let got = say_raw(path, &["--noise-scale", "0", "--noise-w-scale", "0", &text]);
        assert_eq!(got.len(), want.len(), "{path}: length");
        let err = relative_l2(&got, &want);
        eprintln!("piper on {path}: relative L2 {err:.2e}");
        assert!(err <= 1e-3, "{path}: relative L2 {err:.3e}");
    }
}

/// `--precision int8` (the decoder's upsamplers and residual blocks on
/// bytes and words) on every path: where a VNNI kernel runs, within the
/// bound `validate` states for int8 (1e-1 with f32's 1e-3) yet not f32;
/// elsewhere f32, with a warning.
#[test]
fn piper_int8_stays_within_its_bound_on_every_kernel_path() {
    let (text, want) = piper_golden();
    for path in paths() {
        let args = [
            "--precision",
            "int8",
            "--noise-scale",
            "0",
            "--noise-w-scale",
            "0",
            &text,
        ];
        let (got, log) = say_raw_logged(path, &args);
        assert_eq!(got.len(), want.len(), "{path}: length");
        let err = relative_l2(&got, &want);
        eprintln!("piper int8 on {path}: relative L2 {err:.2e}");
        if matches!(path, KernelPath::Avx512Vnni | KernelPath::Avx2Vnni) {
            assert!(err > 1e-3 && err <= 0.101, "{path}: relative L2 {err:.3e}");
        } else {
            assert!(err <= 1e-3, "{path}: relative L2 {err:.3e}");
            assert!(log.contains("the decoder stays f32"), "{path}");
        }
    }
}

#[test]
fn kokoro_matches_kokoro_onnx_on_every_kernel_path() {
    let goldens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::fixtures().join("kokoro/e2e.json")).expect("goldens"),
    )
    .expect("parse");
    let case = &goldens["cases"][0];
    let voice = format!("kokoro:{}", case["voice"].as_str().expect("voice"));
    let want = crate::util::read_f32(&crate::util::fixtures().join("kokoro/e2e_hello.f32"));
    let mut outputs = Vec::new();
    for path in paths() {
        let got = say_raw(
            path,
            &["--voice", &voice, case["text"].as_str().expect("text")],
        );
        assert!(
            got.len().abs_diff(want.len()) <= 2 * 512,
            "{path}: {} samples",
            got.len()
        );
        let n = got.len().min(want.len());
        let spectral = vivace::validate::spectral_distance(&got[..n], &want[..n]);
        eprintln!("kokoro on {path}: spectrogram relative L2 {spectral:.3}");
        assert!(spectral < 0.25, "{path}: spectrogram {spectral}");
        outputs.push((path, got));
    }
    // The integer sums are exact on every path, so the paths differ only
    // where float code does (vectorized loops, the f32 GEMM): the same
    // length, and the same waveform up to float rounding (which ALBERT's
    // and the generator's int8 rounding steps may amplify, hence the bound).
    if let Some((first, base)) = outputs.first() {
        for (path, got) in &outputs[1..] {
            assert_eq!(got.len(), base.len(), "{path} against {first}: length");
            let spectral = vivace::validate::spectral_distance(got, base);
            assert!(
                spectral < 0.05,
                "{path} against {first}: spectrogram {spectral}"
            );
        }
    }
}

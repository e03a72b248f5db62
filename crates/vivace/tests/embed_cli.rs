//! `vivace embed` and `vivace similarity` end to end: against resemblyzer's
//! embeddings of the committed recordings, in every WAV layout the issue
//! names, and every kind of bad input (clear error naming the file, exit
//! code 1, no panic).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{read_f32, scratch};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vivace-models/tests/fixtures/voice_encoder")
}

fn vivace(args: &[&str]) -> Output {
    crate::util::vivace()
        .env_remove("VIVACE_VOICE_ENCODER")
        .args(args)
        .output()
        .expect("run vivace")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    vivace::speaker::cosine_similarity(a, b)
}

/// `vivace embed --json` on every file: the embeddings of resemblyzer's
/// whole pipeline (the 22050 Hz file resampled), cosine ≥ 0.999.
#[test]
fn embeddings_match_resemblyzer_end_to_end() {
    let names = ["speech_16k_a", "speech_16k_b", "speech_22k"];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| fixtures().join(format!("{n}.wav")))
        .collect();
    let mut args = vec!["embed", "--json", "--device", "cpu"];
    args.extend(files.iter().map(|f| path(f)));
    let out = vivace(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut worst = 1f64;
    for (entry, name) in report.as_array().expect("array").iter().zip(names) {
        let got: Vec<f32> = entry["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|v| v.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(got.len(), 256);
        let c = cosine(
            &got,
            &read_f32(&fixtures().join(format!("{name}.embed.f32"))),
        );
        assert!(c >= 0.999, "{name}: cosine {c}");
        worst = worst.min(c);
        assert_eq!(entry["windows"], 6, "{name}");
    }
    eprintln!("vivace embed against resemblyzer: worst cosine {worst:.7}");
}

/// The same recording as 24-bit stereo and as 32-bit float stereo gives the
/// same embedding (within the quantization of 24 bits).
#[test]
fn stereo_24_bit_and_float_files_embed_like_the_original() {
    let dir = scratch();
    let reader = hound::WavReader::open(fixtures().join("speech_16k_a.wav")).expect("open");
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let variants = [
        ("pcm24.wav", 24, hound::SampleFormat::Int),
        ("float.wav", 32, hound::SampleFormat::Float),
    ];
    for (name, bits, format) in variants {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: bits,
            sample_format: format,
        };
        let mut w = hound::WavWriter::create(dir.path().join(name), spec).expect("create");
        for &s in &samples {
            for _ in 0..2 {
                match format {
                    hound::SampleFormat::Int => w.write_sample(i32::from(s) << 8).expect("write"),
                    hound::SampleFormat::Float => {
                        w.write_sample(f32::from(s) / 32768.0).expect("write")
                    }
                }
            }
        }
        w.finalize().expect("finalize");
    }
    let npy = dir.path().join("all.npy");
    let out = vivace(&[
        "embed",
        "--device",
        "cpu",
        path(&dir.path().join("pcm24.wav")),
        path(&dir.path().join("float.wav")),
        "-o",
        path(&npy),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (shape, values) = read_npy(&npy);
    assert_eq!(shape, "(2, 256)");
    let golden = read_f32(&fixtures().join("speech_16k_a.embed.f32"));
    for row in values.chunks(256) {
        let c = cosine(row, &golden);
        assert!(c >= 0.999, "cosine {c}");
    }
}

/// A `.npy` file's shape (as written in its header) and its float32 values.
fn read_npy(path: &Path) -> (String, Vec<f32>) {
    let bytes = std::fs::read(path).expect("read .npy");
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "magic and version");
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    assert_eq!((10 + len) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + len]).expect("ASCII header");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let shape = header
        .split("'shape': ")
        .nth(1)
        .and_then(|s| s.split(", }").next())
        .expect("shape")
        .to_string();
    let values = bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, values)
}

#[test]
fn similarity_is_one_for_the_same_recording_and_high_for_the_same_voice() {
    let a = fixtures().join("speech_16k_a.wav");
    let b = fixtures().join("speech_16k_b.wav");
    let same = vivace(&["similarity", "--device", "cpu", path(&a), path(&a)]);
    assert!(same.status.success(), "{}", text(&same.stderr));
    assert_eq!(text(&same.stdout).trim(), "1.0000");
    let out = vivace(&[
        "similarity",
        "--json",
        "--device",
        "cpu",
        path(&a),
        path(&b),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let c = report["cosine_similarity"].as_f64().expect("number");
    // Two sentences in the same (synthetic) voice; resemblyzer gives 0.949.
    let want = cosine(
        &read_f32(&fixtures().join("speech_16k_a.embed.f32")),
        &read_f32(&fixtures().join("speech_16k_b.embed.f32")),
    );
    assert!((c - want).abs() < 1e-3, "{c} vs resemblyzer's {want}");
}

/// Writes a 16 kHz mono float WAV.
fn write_float_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create");
    for &s in samples {
        w.write_sample(s).expect("write");
    }
    w.finalize().expect("finalize");
}

/// A WAV header with any format code and sample size, and some data.
fn write_raw_wav(path: &Path, format: u16, bits: u16) {
    let block = bits / 8;
    let mut fmt = Vec::new();
    for v in [format, 1] {
        fmt.extend_from_slice(&v.to_le_bytes());
    }
    fmt.extend_from_slice(&16000u32.to_le_bytes());
    fmt.extend_from_slice(&(16000 * u32::from(block)).to_le_bytes());
    fmt.extend_from_slice(&block.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    let data = vec![0u8; usize::from(block) * 16];
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&((4 + 8 + fmt.len() + 8 + data.len()) as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&fmt);
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn bad_recordings_are_clear_errors_naming_the_file() {
    let dir = scratch();
    let file = |name: &str| dir.path().join(name);
    // One second of real speech: shorter than one 1.6 s window.
    let reader = hound::WavReader::open(fixtures().join("speech_16k_a.wav")).expect("open");
    let speech: Vec<f32> = reader
        .into_samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    write_float_wav(&file("short.wav"), &speech[8000..24000]);
    write_float_wav(&file("silence.wav"), &vec![0.0; 48000]);
    let mut nan = speech.clone();
    nan[1234] = f32::NAN;
    write_float_wav(&file("nan.wav"), &nan);
    std::fs::write(file("notes.wav"), "these are notes, not audio").expect("write");
    let mut truncated = std::fs::read(fixtures().join("speech_16k_a.wav")).expect("read");
    std::fs::write(file("cut_data.wav"), &truncated[..2001]).expect("write");
    truncated.truncate(30);
    std::fs::write(file("truncated.wav"), truncated).expect("write");
    write_raw_wav(&file("double.wav"), 3, 64);
    write_raw_wav(&file("alaw.wav"), 6, 8);
    let cases = [
        ("short.wav", "needs at least 1.6 s"),
        ("silence.wav", "silent"),
        ("nan.wav", "not a finite number"),
        ("notes.wav", "not a readable WAV"),
        ("truncated.wav", "not a readable WAV"),
        ("cut_data.wav", "corrupt samples"),
        ("double.wav", "32-bit float"),
        ("alaw.wav", "unsupported WAV sample format"),
        ("missing.wav", "cannot read the file"),
    ];
    for (name, expected) in cases {
        let out = vivace(&["embed", "--device", "cpu", path(&file(name))]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: expected '{expected}' in: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: printed an embedding");
    }
    // The other command and the output flag check their input the same way.
    let good = fixtures().join("speech_16k_a.wav");
    let out = vivace(&["similarity", path(&good), path(&file("silence.wav"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("silence.wav"));
    let out = vivace(&["embed", path(&good), "-o", path(&file("out.txt"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(".npy"), "{}", text(&out.stderr));
    assert!(!file("out.txt").exists());
}

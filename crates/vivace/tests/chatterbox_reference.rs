//! S3Gen's reference front end (`embed_ref`) against `chatterbox-tts` 0.1.7
//! with the small random tokenizer and CAMPPlus of the model tests
//! (`tools/make_s3gen_goldens.py`): the 24 kHz mel exactly, the x-vector and
//! the tokens after Vivace's resampling to 16 kHz (the reference uses
//! torchaudio's sinc resampler), and the errors for recordings that cannot
//! be a reference.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use vivace::family::chatterbox::reference::{ReferenceEncoder, ReferenceError};
use vivace_models::chatterbox::campplus::{CampPlus, CampPlusConfig};
use vivace_models::chatterbox::s3_tokenizer::{S3Tokenizer, S3TokenizerConfig};

use crate::util::{relative_l2, scratch, vivace};

fn model_fixture(dir: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vivace-models/tests/fixtures")
        .join(dir)
        .join(name)
}

fn encoder() -> ReferenceEncoder {
    let config = |dir: &str| std::fs::read_to_string(model_fixture(dir, "config.json")).unwrap();
    let tokenizer_cfg: S3TokenizerConfig = serde_json::from_str(&config("s3_tokenizer")).unwrap();
    let campplus_cfg: CampPlusConfig = serde_json::from_str(&config("campplus")).unwrap();
    let tokenizer = S3Tokenizer::load(
        &model_fixture("s3_tokenizer", "tokenizer.safetensors"),
        &tokenizer_cfg,
        &Device::Cpu,
    )
    .unwrap();
    let campplus = CampPlus::load(
        &model_fixture("campplus", "campplus.safetensors"),
        &campplus_cfg,
        &Device::Cpu,
    )
    .unwrap();
    ReferenceEncoder::from_parts(tokenizer, campplus, &Device::Cpu)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Writes mono 16-bit PCM.
fn write_wav(path: &Path, samples: &[f32], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn embed_ref_matches_the_reference() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chatterbox_reference/embed_ref.safetensors");
    let g = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let wav: Vec<f32> = g["wav"].to_vec1().unwrap();
    let prompt = encoder().prompt(&wav, Path::new("chirp.wav")).unwrap();

    // The mel comes from the 24 kHz samples themselves: equal to rounding.
    let mel_err = relative_l2(&values(&prompt.mel), &values(&g["prompt_feat"]));
    eprintln!("prompt mel: relative L2 {mel_err:.2e}");
    assert!(mel_err < 1e-5, "mel {mel_err:.2e}");

    // The 16 kHz copy is torchaudio's filter reproduced: tokens and x-vector exact.
    let wav16: Vec<f32> = g["wav16"].to_vec1().unwrap();
    let ours16 = vivace_frontend::resample::torchaudio_resample(&wav, 24_000, 16_000).unwrap();
    let resample_err = relative_l2(&ours16, &wav16);
    eprintln!("16 kHz copy against torchaudio's: relative L2 {resample_err:.2e}");
    assert!(resample_err < 1e-5, "resampler {resample_err:.2e}");
    let x_err = relative_l2(&values(&prompt.embedding), &values(&g["embedding"]));
    eprintln!("x-vector: relative L2 {x_err:.2e}");
    assert!(x_err < 1e-4, "x-vector {x_err:.2e}");
    let want: Vec<u32> = g["prompt_token"]
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|t| t as u32)
        .collect();
    assert_eq!(
        prompt.tokens, want,
        "every token, cut to half the mel frames"
    );

    // With the general resampler (rubato, what a file at another rate goes
    // through) instead, the tokens differ at a few positions.
    let rubato16 = vivace_frontend::resample::resample(&wav, 24_000, 16_000).unwrap();
    let n = rubato16.len().min(wav16.len());
    eprintln!(
        "rubato's 16 kHz copy against torchaudio's: relative L2 {:.2e}",
        relative_l2(&rubato16[..n], &wav16[..n])
    );
    let mut tokens = encoder().tokens(&rubato16).unwrap();
    tokens.truncate(want.len());
    let same = tokens.iter().zip(&want).filter(|(a, b)| a == b).count();
    eprintln!("tokens through rubato: {same}/{} identical", want.len());
    assert!(same * 100 >= want.len() * 90, "{same}/{}", want.len());
}

#[test]
fn recordings_that_cannot_be_references_are_clear_errors() {
    let dir = scratch();
    let enc = encoder();
    // Too short.
    let short = dir.path().join("short.wav");
    write_wav(&short, &vec![0.1f32; 4000], 16_000);
    let err = enc.prompt_from_file(&short).unwrap_err();
    assert!(matches!(err, ReferenceError::TooShort { .. }), "{err}");
    assert!(
        err.to_string().contains("short.wav") && err.to_string().contains("0.5 s"),
        "{err}"
    );
    // Silent.
    let silent = dir.path().join("silent.wav");
    write_wav(&silent, &vec![0.0f32; 32_000], 16_000);
    let err = enc.prompt_from_file(&silent).unwrap_err().to_string();
    assert!(
        err.contains("silent.wav") && err.contains("silent"),
        "{err}"
    );
    // Too low a sample rate.
    let low = dir.path().join("low.wav");
    let tone: Vec<f32> = (0..8000).map(|n| (n as f32 * 0.3).sin() * 0.3).collect();
    write_wav(&low, &tone, 4_000);
    let err = enc.prompt_from_file(&low).unwrap_err().to_string();
    assert!(err.contains("low.wav") && err.contains("4000 Hz"), "{err}");
    // Not a WAV file.
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "not audio").unwrap();
    let err = enc.prompt_from_file(&text).unwrap_err().to_string();
    assert!(err.contains("notes.wav"), "{err}");
    // A usable one at 22.05 kHz: resampled, cut to 10 s.
    let long = dir.path().join("long.wav");
    let speechy: Vec<f32> = (0..22_050 * 12)
        .map(|n| ((n as f32 * 0.05).sin() * (n as f32 * 0.0007).sin()) * 0.4)
        .collect();
    write_wav(&long, &speechy, 22_050);
    let prompt = enc.prompt_from_file(&long).unwrap();
    assert_eq!(
        prompt.mel.dim(0).unwrap(),
        500,
        "10 s of mel at 50 frames/s"
    );
    assert_eq!(prompt.tokens.len(), 250);
}

/// Voice conversion end to end on the small networks: the source's tokens
/// (25 per second), spoken in the built-in voice beside the checkpoint,
/// seeded and reproducible. (The small S3Gen knows 300 tokens, the small
/// tokenizer all 6561: they are folded into its range here.)
#[test]
fn voice_conversion_runs_end_to_end() {
    use vivace::family::chatterbox::voice_conversion::{Randomness, VoiceConverter};
    use vivace_models::chatterbox::s3gen::{FlowNoise, S3Gen, S3GenConfig};

    let checkpoint = model_fixture("s3gen", "s3gen.safetensors");
    let cfg: S3GenConfig = serde_json::from_str(
        &std::fs::read_to_string(model_fixture("s3gen", "config.json")).unwrap(),
    )
    .unwrap();
    let s3gen = S3Gen::load(&checkpoint, &cfg, &Device::Cpu, DType::F32).unwrap();
    let converter = VoiceConverter::from_parts(s3gen, encoder(), checkpoint);
    let dir = scratch();
    let source = dir.path().join("source.wav");
    let speechy: Vec<f32> = (0..32_000)
        .map(|n| ((n as f32 * 0.03).sin() * (n as f32 * 0.0009).sin()) * 0.4)
        .collect();
    write_wav(&source, &speechy, 16_000);
    let tokens = converter.source_tokens(&source).unwrap();
    assert_eq!(tokens.len(), 50, "2 s at 25 tokens/s");
    assert!(tokens.iter().all(|&t| t < 6561));
    let tokens: Vec<u32> = tokens.iter().map(|t| t % 300).collect();
    let target = converter.target(None).unwrap();
    let run = |seed: u64| {
        let randomness = Randomness {
            flow: FlowNoise::Seeded(seed),
            vocoder_seed: Some(seed),
        };
        converter
            .speak(&tokens, &target, Some(2), &randomness)
            .unwrap()
    };
    let (a, b) = (run(3), run(3));
    assert_eq!(
        a.len(),
        50 * 2 * 480,
        "two mel frames per token, 480 samples per frame"
    );
    assert_eq!(a, b, "the same seed, the same audio");
    assert!(a.iter().all(|s| s.is_finite() && s.abs() <= 0.99));
}

/// The command's errors name what is wrong and exit non-zero.
#[test]
fn convert_voice_cli_errors_are_clear() {
    let dir = scratch();
    let source = dir.path().join("source.wav");
    write_wav(&source, &vec![0.1f32; 16_000], 16_000);
    // Runs the command with `--s3gen checkpoint`; it must fail: its stderr.
    let failing = |checkpoint: &Path| -> String {
        let out = vivace()
            .args(["convert-voice", source.to_str().unwrap(), "--s3gen"])
            .arg(checkpoint)
            .args([
                "-f",
                dir.path().join("out.wav").to_str().unwrap(),
                "--device",
                "cpu",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = failing(&dir.path().join("nowhere"));
    assert!(err.contains("nowhere"), "{err}");
    // A folder without a checkpoint says which files it looked for.
    let err = failing(dir.path());
    assert!(
        err.contains("s3gen.safetensors") && err.contains("s3gen.pt"),
        "{err}"
    );
    assert!(!dir.path().join("out.wav").exists(), "no partial output");
}

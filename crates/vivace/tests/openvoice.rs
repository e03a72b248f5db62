//! OpenVoice v2's tone-colour converter against the reference
//! (`openvoice-cli` 0.0.5, `tools/make_openvoice_goldens.py`) on random
//! weights in the published checkpoint layout: the linear spectrogram, the
//! reference encoder's embeddings, each stage of `voice_conversion` and the
//! waveform, deterministic (`tau = 0`) and with the posterior's noise
//! injected (`tau = 0.3`).

use std::path::PathBuf;

use vivace_frontend::mel::MelSpectrogram;
use vivace_frontend::speaker_audio::read_wav;
use vivace_models::npy::read_f32;
use vivace_models::openvoice::ToneColorConverter;

use crate::util::{fixtures, relative_l2};

fn dir() -> PathBuf {
    fixtures().join("openvoice")
}

fn golden(name: &str) -> Vec<f32> {
    read_f32(&dir().join(name)).expect("read a golden").values
}

fn converter() -> ToneColorConverter {
    let d = dir();
    ToneColorConverter::load(
        &d.join("checkpoint.pth"),
        &d.join("config.json"),
        &candle_core::Device::Cpu,
    )
    .expect("load the fixture converter")
}

/// The spectrogram of a fixture recording, `[frames, bins]`.
fn spectrogram(name: &str) -> Vec<f32> {
    let recording = read_wav(&dir().join(name)).expect("read the recording");
    assert_eq!(recording.sample_rate, 22_050);
    MelSpectrogram::vits_linear(1024, 256)
        .try_compute(&recording.samples)
        .expect("long enough")
}

use vivace::speaker::cosine_similarity as cosine;

/// `[rows, cols]` row-major, transposed.
fn transposed(values: &[f32], rows: usize) -> Vec<f32> {
    let cols = values.len() / rows;
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| values[r * cols + c]))
        .collect()
}

#[test]
fn spectrogram_matches_spectrogram_torch() {
    let ours = spectrogram("source.wav");
    // The golden is `[513, frames]`.
    let reference = transposed(&golden("spec_source.npy"), 513);
    assert_eq!(ours.len(), reference.len(), "86 frames of 513 bins");
    let err = relative_l2(&ours, &reference);
    eprintln!("spectrogram: relative L2 {err:e}");
    assert!(err < 1e-5, "spectrogram relative L2 {err:e}");
}

#[test]
fn embeddings_match_extract_se() {
    let converter = converter();
    for (wav, se) in [
        ("source.wav", "se_source.npy"),
        ("reference.wav", "se_reference.npy"),
    ] {
        let ours = converter.embedding(&spectrogram(wav)).expect("embed");
        let reference = golden(se);
        let cos = cosine(&ours, &reference);
        let err = relative_l2(&ours, &reference);
        eprintln!("{wav}: cosine {cos}, relative L2 {err:e}");
        assert!(
            cos >= 0.9999 && err < 1e-4,
            "{wav}: cosine {cos}, relative L2 {err:e}"
        );
    }
}

#[test]
fn conversion_matches_voice_conversion_stage_by_stage() {
    let converter = converter();
    let spec = spectrogram("source.wav");
    let (source, target) = (golden("se_source.npy"), golden("se_reference.npy"));
    let stages = converter
        .stages(&spec, &source, &target, None)
        .expect("convert");
    for (name, tensor) in [
        ("z.npy", &stages.z),
        ("z_p.npy", &stages.z_p),
        ("z_hat.npy", &stages.z_hat),
    ] {
        let ours = tensor
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("values");
        let err = relative_l2(&ours, &golden(name));
        eprintln!("{name}: relative L2 {err:e}");
        assert!(err < 1e-4, "{name}: relative L2 {err:e}");
    }
    let reference = golden("converted.npy");
    assert_eq!(stages.audio.len(), reference.len());
    let err = relative_l2(&stages.audio, &reference);
    eprintln!("waveform at tau 0: relative L2 {err:e}");
    assert!(err < 1e-3, "converted waveform relative L2 {err:e}");

    // tau = 0.3 with the reference's noise: a different, still exact, output.
    let noise = golden("noise.npy");
    let noisy = converter
        .convert(&spec, &source, &target, Some((&noise, 0.3)))
        .expect("convert with noise");
    let reference_tau = golden("converted_tau.npy");
    let err = relative_l2(&noisy, &reference_tau);
    eprintln!("waveform at tau 0.3: relative L2 {err:e}");
    assert!(
        err < 1e-3,
        "converted waveform at tau 0.3: relative L2 {err:e}"
    );
    assert!(
        relative_l2(&noisy, &reference) > 1e-2,
        "the noise changes the output"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let converter = converter();
    let spec = spectrogram("source.wav");
    let se = golden("se_source.npy");
    let err = converter.convert(&spec[..700], &se, &se, None).unwrap_err();
    assert!(err.to_string().contains("513 bins"), "{err}");
    let err = converter.convert(&spec, &se[..10], &se, None).unwrap_err();
    assert!(
        err.to_string().contains("source tone-colour embedding"),
        "{err}"
    );
    // A checkpoint that does not fit its config names the file; a base
    // speaker's config is not a converter's.
    let scratch = crate::util::scratch();
    let config = scratch.path().join("config.json");
    let text = std::fs::read_to_string(dir().join("config.json")).expect("read config");
    for ((from, to), expected) in [
        (
            ("\"inter_channels\": 16", "\"inter_channels\": 32"),
            ["checkpoint.pth", "expected sizes"],
        ),
        (
            ("\"n_speakers\": 0", "\"n_speakers\": 10"),
            ["config.json", "n_speakers"],
        ),
    ] {
        std::fs::write(&config, text.replace(from, to)).expect("write config");
        let err = ToneColorConverter::load(
            &dir().join("checkpoint.pth"),
            &config,
            &candle_core::Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(expected.iter().all(|e| err.contains(e)), "{err}");
    }
}

/// `vivace clone-voice SOURCE --reference REFERENCE -f OUT` with the
/// converter in `converter` and `extra` flags.
fn clone_voice(
    converter: &std::path::Path,
    reference: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    crate::util::vivace()
        .arg("clone-voice")
        .args(extra)
        .arg("--converter")
        .arg(converter)
        .arg(dir().join("source.wav"))
        .arg("--reference")
        .arg(reference)
        .arg("-f")
        .arg(out)
        .output()
        .expect("run vivace")
}

/// A WAV's samples as f32 and its rate.
fn read_back(path: &std::path::Path) -> (Vec<f32>, u32) {
    let recording = read_wav(path).expect("read the output");
    (recording.samples, recording.sample_rate)
}

#[test]
fn clone_voice_cli_matches_the_reference_and_saves_numpys_embedding() {
    let scratch = crate::util::scratch();
    let (out, se) = (
        scratch.path().join("out.wav"),
        scratch.path().join("se.npy"),
    );
    let se_arg = se.to_str().expect("a UTF-8 path");
    let flags = [
        "--no-vad",
        "--tau",
        "0",
        "--json",
        "--save-embedding",
        se_arg,
    ];
    let run = clone_voice(&dir(), &dir().join("reference.wav"), &out, &flags);
    assert!(run.status.success(), "{}", crate::util::stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("a JSON report");
    assert!(report["rtf"].as_f64().is_some_and(|r| r > 0.0), "{report}");
    let (audio, rate) = read_back(&out);
    assert_eq!(rate, 22_050);
    // The WAV is 16-bit: the reference's waveform quantized.
    let reference: Vec<f32> = golden("converted.npy")
        .iter()
        .map(|x| (x * 32767.0).round().clamp(-32768.0, 32767.0) / 32768.0)
        .collect();
    let err = relative_l2(&audio, &reference);
    assert!(
        err < 1e-2,
        "converted waveform through the CLI: relative L2 {err:e}"
    );
    // The saved embedding is byte for byte what numpy.save writes for it.
    let saved = std::fs::read(&se).expect("read the saved embedding");
    let ours = read_f32(&se).expect("parse it").values;
    assert!(relative_l2(&ours, &golden("se_reference.npy")) < 1e-5);
    let numpy = std::fs::read(dir().join("se_reference.npy")).expect("read numpy's file");
    assert_eq!(saved[..128], numpy[..128], "the .npy header numpy writes");
    assert_eq!(
        vivace_models::npy::encode_f32(&[256], &golden("se_reference.npy")),
        numpy
    );

    // The saved embedding is a reference too, and gives the same audio.
    let again = scratch.path().join("again.wav");
    let run = clone_voice(&dir(), &se, &again, &["--no-vad", "--tau", "0"]);
    assert!(run.status.success(), "{}", crate::util::stderr(&run));
    assert_eq!(read_back(&again).0, audio);
}

#[test]
fn say_clone_revoices_the_default_voice_and_caches_its_tone_colour() {
    let scratch = crate::util::scratch();
    let voice = scratch.path().join("joe.onnx");
    std::fs::copy(crate::util::default_voice(), &voice).expect("copy the voice");
    std::fs::copy(
        vivace_models::piper::PiperVoice::config_path(crate::util::default_voice()),
        scratch.path().join("joe.onnx.json"),
    )
    .expect("copy its config");
    let say = |out: &std::path::Path| {
        crate::util::vivace()
            .args([
                "say",
                "Two sentences. Both re-voiced.",
                "--seed",
                "5",
                "--converter",
            ])
            .arg(dir())
            .arg("--voice")
            .arg(&voice)
            .arg("--clone")
            // 20 s with pauses: split by Silero VAD, as the reference does.
            .arg(fixtures().join("vad/speech_16k.wav"))
            .arg("-f")
            .arg(out)
            .output()
            .expect("run vivace")
    };
    let first = scratch.path().join("first.wav");
    let run = say(&first);
    assert!(run.status.success(), "{}", crate::util::stderr(&run));
    let cached: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("openvoice-se"))
        .collect();
    assert_eq!(
        cached.len(),
        1,
        "the voice's tone colour is cached beside it"
    );
    let (audio, rate) = read_back(&first);
    assert_eq!(rate, 22_050, "the converter's rate");
    let seconds = audio.len() as f64 / 22_050.0;
    assert!((1.0..6.0).contains(&seconds), "{seconds} s");
    // Seeded, with the cached embedding: the same audio again.
    let second = scratch.path().join("second.wav");
    let run = say(&second);
    assert!(run.status.success(), "{}", crate::util::stderr(&run));
    assert_eq!(read_back(&second).0, audio);
}

#[test]
fn unusable_references_and_a_missing_converter_are_clear_errors() {
    let scratch = crate::util::scratch();
    let wav = |name: &str, seconds: f64, amplitude: f32| {
        let path = scratch.path().join(name);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).expect("create");
        for i in 0..(seconds * 22_050.0) as usize {
            let x = amplitude * (i as f32 * 0.05).sin();
            writer.write_sample((x * 32767.0) as i16).expect("write");
        }
        writer.finalize().expect("finalize");
        path
    };
    let not_audio = scratch.path().join("notes.wav");
    std::fs::write(&not_audio, "not a recording").expect("write");
    let cases = [
        (wav("silent.wav", 3.0, 0.0), "silent"),
        (wav("short.wav", 0.4, 0.5), "at least 1 s"),
        (not_audio, "not a readable WAV"),
    ];
    for (reference, expected) in &cases {
        let run = clone_voice(
            &dir(),
            reference,
            &scratch.path().join("out.wav"),
            &["--no-vad"],
        );
        let err = crate::util::stderr(&run);
        assert!(!run.status.success());
        assert!(
            err.contains(expected) && err.contains(&*reference.to_string_lossy()),
            "{expected}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = scratch.path().join("out.wav");
    let run = clone_voice(scratch.path(), &dir().join("reference.wav"), &out, &[]);
    let err = crate::util::stderr(&run);
    assert!(!run.status.success());
    assert!(
        err.contains("checkpoint.pth") && err.contains("vivace download openvoice"),
        "{err}"
    );
}

#[test]
fn an_mms_voice_clones_at_its_own_rate() {
    // A random-weight MMS checkpoint at 16 kHz: its speech goes to the
    // converter at 22,050 Hz and comes back at 16 kHz.
    let scratch = crate::util::scratch();
    let voice = scratch.path().join("mms");
    std::fs::create_dir(&voice).expect("mkdir");
    for entry in std::fs::read_dir(fixtures().join("mms/tiny-sdp")).expect("list") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, voice.join(path.file_name().expect("a name"))).expect("copy");
    }
    let say = |out: &std::path::Path, clone: bool| {
        let mut cmd = crate::util::vivace();
        cmd.args(["say", "hello there", "--seed", "2", "--voice"])
            .arg(&voice)
            .arg("-f")
            .arg(out);
        if clone {
            cmd.args(["--no-vad", "--converter"])
                .arg(dir())
                .arg("--clone")
                .arg(dir().join("reference.wav"));
        }
        cmd.output().expect("run vivace")
    };
    let (cloned, plain) = (
        scratch.path().join("cloned.wav"),
        scratch.path().join("plain.wav"),
    );
    for (out, clone) in [(&cloned, true), (&plain, false)] {
        let run = say(out, clone);
        assert!(run.status.success(), "{}", crate::util::stderr(&run));
    }
    let (cloned, rate) = read_back(&cloned);
    let (plain, plain_rate) = read_back(&plain);
    assert_eq!((rate, plain_rate), (16_000, 16_000));
    assert!(cloned.len().abs_diff(plain.len()) < 256 * 16_000 / 22_050 + 2);
    assert_ne!(cloned, plain);
    assert!(
        voice.read_dir().expect("list").any(|e| e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with("openvoice-se-")),
        "the checkpoint folder holds its tone colour"
    );
}

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

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

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
    let d = dir();
    // A checkpoint that does not fit its config names the file.
    let scratch = crate::util::scratch();
    let config = scratch.path().join("config.json");
    let text = std::fs::read_to_string(d.join("config.json")).expect("read config");
    std::fs::write(
        &config,
        text.replace("\"inter_channels\": 16", "\"inter_channels\": 32"),
    )
    .expect("write config");
    let err = ToneColorConverter::load(
        &d.join("checkpoint.pth"),
        &config,
        &candle_core::Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("checkpoint.pth") && err.contains("expected sizes"),
        "{err}"
    );
    // A base speaker's config is not a converter's.
    std::fs::write(
        &config,
        text.replace("\"n_speakers\": 0", "\"n_speakers\": 10"),
    )
    .expect("write");
    let err = ToneColorConverter::load(
        &d.join("checkpoint.pth"),
        &config,
        &candle_core::Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("config.json") && err.contains("n_speakers"),
        "{err}"
    );
}

//! Silero VAD against the `silero-vad` package (6.2.3, its TorchScript
//! model and `get_speech_timestamps`) and OpenVoice's voice-activity split
//! of a reference (`tools/make_vad_goldens.py`), on a committed 16 kHz
//! recording with pauses. The weights are the package's own, fetched from
//! PyPI by the voice store.

use vivace::voice_store::VoiceStore;
use vivace_frontend::speaker_audio::read_wav;
use vivace_models::npy::read_f32;
use vivace_models::silero_vad::{speech_timestamps, SileroVad, SpeechOptions};

use crate::util::fixtures;

fn vad() -> SileroVad {
    let store = VoiceStore::from_env().expect("a cache directory");
    let weights = store
        .ensure_silero_vad()
        .expect("fetch Silero VAD with pip");
    SileroVad::load(&weights).expect("load Silero VAD")
}

fn goldens() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("vad/vad.json")).expect("read vad.json");
    serde_json::from_str(&text).expect("parse vad.json")
}

/// The recording, normalized as whisper-timestamped does before the VAD.
fn normalized() -> Vec<f32> {
    let recording = read_wav(&fixtures().join("vad/speech_16k.wav")).expect("read the recording");
    assert_eq!(recording.sample_rate, 16_000);
    let peak = recording.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    recording
        .samples
        .iter()
        .map(|s| s / peak.max(0.1))
        .collect()
}

#[test]
fn probabilities_and_speech_runs_match_the_package() {
    let audio = normalized();
    let probs = vad().probabilities(&audio);
    let reference = read_f32(&fixtures().join("vad/probs.npy"))
        .expect("probs")
        .values;
    assert_eq!(probs.len(), reference.len());
    let worst = probs
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!(
        "{} windows, worst probability difference {worst:e}",
        probs.len()
    );
    assert!(worst < 1e-4, "worst probability difference {worst}");
    let options = SpeechOptions {
        min_speech_ms: 100,
        min_silence_ms: 1000,
        ..SpeechOptions::default()
    };
    let runs = speech_timestamps(&probs, audio.len(), &options);
    let expected: Vec<std::ops::Range<usize>> = goldens()["speech"]
        .as_array()
        .expect("speech")
        .iter()
        .map(|r| {
            r["start"].as_u64().expect("start") as usize..r["end"].as_u64().expect("end") as usize
        })
        .collect();
    assert_eq!(runs, expected);
}

#[test]
fn a_reference_is_split_and_embedded_as_openvoice_does() {
    let tone_color = vivace::tone_color::ToneColor::load(
        &fixtures().join("openvoice"),
        &candle_core::Device::Cpu,
    )
    .expect("load the converter fixture")
    .with_vad(vad());
    let path = fixtures().join("vad/speech_16k.wav");
    let recording = read_wav(&path).expect("read the recording");
    let split = tone_color
        .reference_split(&recording.samples, recording.sample_rate, &path)
        .expect("split");
    let golden = goldens();
    let segments: Vec<std::ops::Range<usize>> = golden["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|r| {
            r["start"].as_u64().expect("start") as usize..r["end"].as_u64().expect("end") as usize
        })
        .collect();
    assert_eq!(split.segments, segments);
    let pieces: Vec<(u64, u64)> = golden["pieces_ms"]
        .as_array()
        .expect("pieces")
        .iter()
        .map(|p| (p[0].as_u64().expect("start"), p[1].as_u64().expect("end")))
        .collect();
    assert_eq!(split.pieces_ms, pieces);
    let seconds = golden["active_seconds"].as_f64().expect("seconds");
    assert!(
        (split.active_seconds - seconds).abs() < 1e-3,
        "{} s",
        split.active_seconds
    );

    // The averaged embedding; the pieces go from 16 kHz to 22,050 Hz
    // through Vivace's resampler where the reference uses librosa's soxr.
    let ours = tone_color
        .embed(&recording.samples, recording.sample_rate, &path)
        .expect("embed");
    let reference = read_f32(&fixtures().join("vad/se_vad.npy"))
        .expect("se")
        .values;
    let dot: f64 = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(&ours) * norm(&reference));
    let err = crate::util::relative_l2(&ours, &reference);
    eprintln!("embedding after the split: cosine {cosine}, relative L2 {err:e}");
    assert!(cosine >= 0.9999, "cosine {cosine}");

    // Too little speech for one piece is a clear error.
    let short = &recording.samples[..16_000 * 4];
    let err = tone_color
        .embed(short, 16_000, &path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than 5 s of speech") && err.contains("--no-vad"),
        "{err}"
    );
}

//! The GE2E voice encoder against resemblyzer 0.1.4
//! (`tools/make_voice_encoder_goldens.py`), with its real pretrained weights
//! fetched from PyPI into the cache on first use, stage by stage:
//! preprocessing (resampling, volume, VAD trimming), mel frames, the encoder
//! on resemblyzer's own windows, and the averaged utterance embedding. The
//! whole pipeline through the CLI is in `embed_cli`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use vivace::speaker::{
    cosine_similarity as cosine, SpeakerEncoder, MIN_COVERAGE, WINDOWS_PER_SECOND,
};
use vivace::voice_store::{VoiceStore, RESEMBLYZER_ENCODER};
use vivace_frontend::mel::MelSpectrogram;
use vivace_frontend::speaker_audio::ENCODER_SAMPLE_RATE;
use vivace_models::voice_encoder::{
    partial_window_starts, utterance_embedding, VoiceEncoder, HOP, MEL_CHANNELS, WINDOW_FRAMES,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vivace-models/tests/fixtures/voice_encoder")
}

fn weights() -> PathBuf {
    let store = VoiceStore::from_env().expect("a cache directory");
    store
        .ensure_weights(&RESEMBLYZER_ENCODER)
        .unwrap_or_else(|e| panic!("the tests need resemblyzer's weights: {e}"))
}

fn encoder() -> &'static VoiceEncoder {
    static ENCODER: OnceLock<VoiceEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        VoiceEncoder::from_resemblyzer(&weights(), &Device::Cpu).expect("load the encoder")
    })
}

/// The encoder's mel front end (n_fft 400, hop 160, 40 bands at 16 kHz).
fn mel_spectrogram() -> MelSpectrogram {
    MelSpectrogram::new(ENCODER_SAMPLE_RATE, 400, HOP, MEL_CHANNELS)
}

fn goldens() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("goldens.json")).expect("goldens"),
    )
    .expect("parse goldens")
}

fn floats(name: &str) -> Vec<f32> {
    crate::util::read_f32(&fixtures().join(name))
}

/// The mel front end on the waveform resemblyzer computed its frames from.
#[test]
fn mel_frames_match_librosa() {
    let padded = floats("speech_16k_a.padded.f32");
    let want = floats("speech_16k_a.mel.f32");
    let got = mel_spectrogram().compute(&padded);
    assert_eq!(got.len(), want.len(), "frame count");
    let rel = crate::util::relative_l2(&got, &want);
    assert!(rel < 1e-5, "relative L2 error of the mel frames {rel}");
    eprintln!("mel frames: relative L2 error {rel:.2e}");
}

/// From resemblyzer's preprocessed waveform to the utterance embedding, all
/// in Vivace, through the path `vivace embed` takes after preprocessing
/// (`SpeakerEncoder`): windows, padding, mel frames, encoder, averaging.
#[test]
fn utterance_embedding_from_the_waveform_matches_resemblyzer() {
    let goldens = goldens();
    let golden = &goldens[0];
    assert_eq!(golden["file"], "speech_16k_a.wav");
    let n = golden["preprocessed_samples"].as_u64().expect("samples") as usize;
    let starts = partial_window_starts(n, WINDOWS_PER_SECOND, MIN_COVERAGE).expect("starts");
    let padded = floats("speech_16k_a.padded.f32");
    let last_end = (starts.last().expect("a window") + WINDOW_FRAMES) * HOP;
    assert_eq!(
        padded.len(),
        n.max(last_end),
        "the golden waveform is padded to the last window"
    );
    let speaker = SpeakerEncoder::load(&weights(), &Device::Cpu).expect("load the encoder");
    let embedding = speaker
        .embed_preprocessed(padded[..n].to_vec(), Path::new("speech_16k_a"))
        .expect("embed");
    assert_eq!(embedding.windows, starts.len());
    let c = cosine(&embedding.embedding, &floats("speech_16k_a.embed.f32"));
    assert!(c >= 0.999, "cosine {c}");
    eprintln!("voice encoder from the waveform: cosine {c:.7}");
}

#[test]
fn partial_and_utterance_embeddings_match_resemblyzer() {
    let goldens = goldens();
    let mut worst = 1f64;
    for golden in goldens.as_array().expect("array") {
        let stem = golden["file"]
            .as_str()
            .expect("file")
            .trim_end_matches(".wav");
        let mel = floats(&format!("{stem}.mel.f32"));
        let frames = mel.len() / MEL_CHANNELS;
        let starts: Vec<usize> = golden["partial_starts"]
            .as_array()
            .expect("starts")
            .iter()
            .map(|s| s.as_u64().expect("start") as usize / HOP)
            .collect();
        let windows: Vec<Tensor> = starts
            .iter()
            .map(|&s| {
                assert!(
                    s + WINDOW_FRAMES <= frames,
                    "{stem}: window past the frames"
                );
                Tensor::from_slice(
                    &mel[s * MEL_CHANNELS..(s + WINDOW_FRAMES) * MEL_CHANNELS],
                    (WINDOW_FRAMES, MEL_CHANNELS),
                    &Device::Cpu,
                )
                .expect("window")
            })
            .collect();
        let batch = Tensor::stack(&windows, 0).expect("batch");
        let partials = encoder().embed_windows(&batch).expect("embed");
        let partials = partials.to_vec2::<f32>().expect("to host");
        let want = floats(&format!("{stem}.partials.f32"));
        for (i, got) in partials.iter().enumerate() {
            let c = cosine(got, &want[i * 256..(i + 1) * 256]);
            assert!(c >= 0.9999, "{stem}: partial {i} cosine {c}");
            worst = worst.min(c);
        }
        // Windows differ from each other far more than the tolerance, so
        // the comparison above has teeth.
        assert!(
            cosine(&partials[0], &want[256..512]) < 0.999,
            "{stem}: windows alike"
        );
        // The utterance embedding: the mean of the partials, L2-normalized.
        let c = cosine(
            &utterance_embedding(&partials),
            &floats(&format!("{stem}.embed.f32")),
        );
        assert!(c >= 0.999, "{stem}: utterance cosine {c}");
        worst = worst.min(c);
    }
    eprintln!("voice encoder: worst cosine similarity {worst:.7}");
}

/// resemblyzer's `preprocess_wav` (resampling, volume, VAD trimming) on the
/// committed WAV files: the 16 kHz files need no resampling and must come out
/// sample for sample; the 22050 Hz one goes through a different resampler
/// (rubato's against soxr's), so it must keep the same length.
#[test]
fn preprocessing_matches_resemblyzer() {
    let goldens = goldens();
    for golden in goldens.as_array().expect("array") {
        let file = golden["file"].as_str().expect("file");
        let pre = vivace_frontend::speaker_audio::preprocess(&fixtures().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = golden["preprocessed_samples"].as_u64().expect("samples") as usize;
        assert_eq!(pre.len(), want, "{file}: samples after trimming");
    }
    // The trimmed waveform itself, against the one resemblyzer's mel frames
    // were computed from (before its padding to the last window).
    let pre = vivace_frontend::speaker_audio::preprocess(&fixtures().join("speech_16k_a.wav"))
        .expect("preprocess");
    let padded = floats("speech_16k_a.padded.f32");
    let worst = pre
        .iter()
        .zip(&padded)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "worst sample difference {worst}");
}

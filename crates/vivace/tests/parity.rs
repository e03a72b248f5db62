//! Parity with Piper 1.8 (piper-tts + onnxruntime) on the default voice.

use candle_core::{DType, Device};
use vivace::synth::Synthesizer;
use vivace_models::vits::SynthesisParams;

use crate::util::{default_voice, golden_waveform, goldens, ids, relative_l2};

fn load_default() -> Synthesizer {
    let store = vivace::voice_store::VoiceStore::from_env().expect("cache directory");
    Synthesizer::load(
        default_voice(),
        &Device::Cpu,
        DType::F32,
        &store.espeak_data_dir(),
    )
    .expect("load default voice")
}

/// Largest relative L2 error of the float waveform allowed against onnxruntime.
const TOLERANCE: f64 = 1e-3;

/// Every golden sentence, rendered with noise 0 at each recorded length scale,
/// matches onnxruntime's waveform in length and within [`TOLERANCE`].
#[test]
fn waveforms_match_onnxruntime() {
    let synth = load_default();
    let mut worst = 0f64;
    let mut checked = 0;
    for case in goldens()["cases"].as_array().expect("cases") {
        for sentence in case["sentences"].as_array().expect("sentences") {
            for render in sentence["renders"].as_array().expect("renders") {
                let params = SynthesisParams {
                    noise_scale: render["noise_scale"].as_f64().expect("noise_scale"),
                    length_scale: render["length_scale"].as_f64().expect("length_scale"),
                    noise_w: render["noise_w"].as_f64().expect("noise_w"),
                    speaker: None,
                    seed: None,
                };
                let got = synth
                    .vits()
                    .expect("a VITS voice")
                    .model()
                    .synthesize(&ids(sentence), &params)
                    .expect("synthesize");
                let file = render["file"].as_str().expect("file");
                let want = golden_waveform(file);
                assert_eq!(got.len(), want.len(), "{file}: length");
                let err = relative_l2(&got, &want);
                assert!(err <= TOLERANCE, "{file}: relative L2 error {err:.3e}");
                worst = worst.max(err);
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} golden renders found");
    eprintln!("waveform parity: {checked} renders, worst relative L2 error {worst:.2e}");
}

/// Text → sentences → phonemes → ids equals piper-tts 1.8 for every golden text.
#[test]
fn phoneme_ids_match_piper() {
    let synth = load_default();
    for case in goldens()["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let sentences = synth.sentences(text).expect("phonemize");
        let want: Vec<&serde_json::Value> = case["sentences"]
            .as_array()
            .expect("sentences")
            .iter()
            .collect();
        assert_eq!(sentences.len(), want.len(), "{text:?}: sentence count");
        for (got, want) in sentences.iter().zip(want) {
            assert_eq!(
                got.phonemes.concat(),
                want["phoneme_string"].as_str().expect("phoneme_string"),
                "{text:?}: phonemes"
            );
            assert_eq!(got.ids, ids(want), "{text:?}: ids");
        }
    }
}

/// Three sentences of different lengths in one padded, masked batch equal
/// onnxruntime's batched output (`tools/make_batch_goldens.py`), each trimmed
/// to its own length.
#[test]
fn batched_synthesis_matches_onnxruntime_batch() {
    let synth = load_default();
    let text = std::fs::read_to_string(crate::util::fixtures().join("piper_batch_golden.json"))
        .expect("read batch golden");
    let golden: serde_json::Value = serde_json::from_str(&text).expect("parse batch golden");
    let items = golden["items"].as_array().expect("items");
    let ids: Vec<Vec<i64>> = items.iter().map(ids).collect();
    let params = SynthesisParams {
        noise_scale: 0.0,
        length_scale: 1.0,
        noise_w: 0.0,
        speaker: None,
        seed: None,
    };
    let batch: Vec<(&[i64], SynthesisParams)> =
        ids.iter().map(|i| (i.as_slice(), params)).collect();
    let got = synth
        .vits()
        .expect("a VITS voice")
        .model()
        .synthesize_batch(&batch)
        .expect("batch");
    assert_eq!(got.len(), 3);
    for (item, audio) in items.iter().zip(&got) {
        let file = item["file"].as_str().expect("file");
        let want = golden_waveform(file);
        assert_eq!(audio.len(), want.len(), "{file}: length");
        let err = relative_l2(audio, &want);
        assert!(err <= TOLERANCE, "{file}: relative L2 error {err:.3e}");
        eprintln!("{file}: batched relative L2 error {err:.2e}");
    }
}

/// With a seed, noisy synthesis is reproducible and does not depend on
/// what else is in the batch: each item's noise is its own stream, read from
/// the start, so padding to a longer neighbour does not shift it.
#[test]
fn seeded_noise_gives_each_sentence_the_same_audio_alone_or_in_a_batch() {
    let synth = load_default();
    let vits = synth.vits().expect("a VITS voice");
    let sentences = synth
        .sentences("A short one. And here is a second, rather longer sentence to pad against.")
        .expect("sentences");
    assert_eq!(sentences.len(), 2);
    let seeded = |seed| SynthesisParams {
        seed: Some(seed),
        ..vits.synthesis_defaults()
    };
    assert!(seeded(1).noise_scale > 0.0 && seeded(1).noise_w > 0.0);
    let batch: Vec<(&[i64], SynthesisParams)> = sentences
        .iter()
        .zip([7, 8])
        .map(|(s, seed)| (s.ids.as_slice(), seeded(seed)))
        .collect();
    let together = vits.model().synthesize_batch(&batch).expect("batch");
    for ((ids, params), batched) in batch.iter().zip(&together) {
        let alone = vits.model().synthesize(ids, params).expect("alone");
        assert_eq!(alone.len(), batched.len(), "length");
        let err = relative_l2(batched, &alone);
        assert!(err <= TOLERANCE, "batched differs from alone by {err:.2e}");
        let again = vits.model().synthesize(ids, params).expect("again");
        assert_eq!(again, alone, "the same seed gave different audio");
    }
    let other = vits
        .model()
        .synthesize(&sentences[0].ids, &seeded(9))
        .expect("other seed");
    assert_ne!(other, together[0], "another seed gave the same audio");
}

/// Collects everything written, for comparing outputs.
struct Capture(Vec<f32>);

impl vivace_frontend::audio::AudioSink for Capture {
    fn write(&mut self, samples: &[f32]) -> vivace_frontend::Result<()> {
        self.0.extend_from_slice(samples);
        Ok(())
    }

    fn finish(self: Box<Self>) -> vivace_frontend::Result<()> {
        Ok(())
    }
}

/// Sentences synthesized on parallel threads come out in order and equal to
/// the sequential result (noise 0), silences included.
#[test]
fn parallel_sentences_keep_order_and_output() {
    let mut synth = load_default();
    let text =
        "This is the first sentence. Here is the second one! And a third? A fourth, to be sure.";
    let mut request = vivace::family::Request::default();
    request.overrides.insert("noise_scale".into(), 0.0.into());
    request.overrides.insert("noise_w".into(), 0.0.into());
    let params = synth.params(&request).expect("params");
    let post = vivace_frontend::audio::PostProcess::default();
    let mut sequential = Capture(Vec::new());
    synth
        .speak(text, &params, &post, 0.2, &mut sequential)
        .expect("sequential");
    synth.set_parallel_sentences(3, 1);
    let mut parallel = Capture(Vec::new());
    let report = synth
        .speak(text, &params, &post, 0.2, &mut parallel)
        .expect("parallel");
    assert_eq!(report.sentences, 4);
    assert_eq!(parallel.0.len(), sequential.0.len());
    let err = relative_l2(&parallel.0, &sequential.0);
    assert!(err < 1e-6, "parallel differs from sequential: {err:.2e}");
}

/// Our work count for joe-medium agrees with the independent count in the CPU
/// speed issue (direct convolution, 2026-11-27): about 5.8 GFLOP per second
/// of audio, decoder 67 %, flow 21 %, text encoder 11 %, durations 1 %.
#[test]
fn work_count_matches_the_independent_count() {
    let synth = load_default();
    let cfg = synth.vits().expect("a VITS voice").model().config();
    // The long golden sentence: 229 ids, 113,920 samples.
    let frames = 113_920 / cfg.hop_length();
    let macs = cfg.macs(229, frames);
    let seconds = 113_920.0 / f64::from(cfg.sampling_rate);
    let gflop_per_second = 2.0 * macs.total() / seconds / 1e9;
    assert!(
        (5.2..6.4).contains(&gflop_per_second),
        "{gflop_per_second:.2} GFLOP/s"
    );
    let share = |x: f64| x / macs.total();
    assert!(
        (0.62..0.72).contains(&share(macs.decoder)),
        "decoder {:.2}",
        share(macs.decoder)
    );
    assert!(
        (0.17..0.25).contains(&share(macs.flow)),
        "flow {:.2}",
        share(macs.flow)
    );
    assert!(
        (0.07..0.15).contains(&share(macs.text_encoder)),
        "encoder {:.2}",
        share(macs.text_encoder)
    );
    eprintln!(
        "joe-medium: {gflop_per_second:.2} GFLOP per second of audio; decoder {:.0} %, flow {:.0} %, text encoder {:.0} %, durations {:.1} %",
        100.0 * share(macs.decoder),
        100.0 * share(macs.flow),
        100.0 * share(macs.text_encoder),
        100.0 * share(macs.duration_predictor)
    );
}

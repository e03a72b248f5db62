//! The runtime driven by a small fake voice that needs no download: a
//! multi-step model whose audio is a known function of its input, and that
//! panics, fails or runs out of memory on demand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vivace_frontend::audio::PostProcess;
use vivace_perf::batch::ProbeError;

use super::*;
use crate::family::{Capabilities, Model, Request, SpeakerRef, StepError};

const RATE: u32 = 100;
const CHUNK: usize = 4;

/// The fake's parameters: a gain on every sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FakeParams {
    gain: f32,
}

/// One fake sequence: its text and how many steps it has taken.
struct FakeState {
    text: String,
    steps_taken: usize,
    gain: f32,
}

/// Speaks each `|`-separated part of its input as one sentence of
/// `steps(text)` chunks of [`CHUNK`] samples given by [`expected_chunk`].
/// A sentence `panic` panics its step, `fail` fails it; a step of more than
/// `oom_above` sequences runs out of memory.
struct FakeVoice {
    capabilities: Capabilities,
    oom_above: usize,
    step_delay: Duration,
    /// The batch size of every step tried, in order.
    batches: Mutex<Vec<usize>>,
    /// Steps running now, and the most seen at once.
    running: AtomicUsize,
    steps_done: AtomicUsize,
    /// (first sentence text of the step, steps running when it began).
    starts: Mutex<Vec<(String, usize)>>,
    /// Each step's beginning (`true`) and end, with its first sentence, in order.
    log: Mutex<Vec<(bool, String)>>,
}

impl FakeVoice {
    fn new(oom_above: usize, step_delay: Duration) -> Self {
        Self {
            capabilities: Capabilities {
                family: "fake",
                sample_rate: RATE,
                speakers: 1,
                speaker_names: Vec::new(),
                languages: Vec::new(),
                clones: false,
                streams: true,
            },
            oom_above,
            step_delay,
            batches: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            steps_done: AtomicUsize::new(0),
            starts: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        }
    }
}

/// Chunks in the sentence `text`.
fn steps(text: &str) -> usize {
    1 + text.len() % 3
}

/// The fake model's chunk `k` of sentence `text` at `gain`: the reference
/// the runtime's output is checked against.
fn expected_chunk(text: &str, k: usize, gain: f32) -> Vec<f32> {
    let seed = text.bytes().map(u32::from).sum::<u32>() % 97;
    (0..CHUNK)
        .map(|j| gain * (seed as f32 / 100.0 + k as f32 / 10.0 + j as f32 / 1000.0))
        .collect()
}

impl Model for FakeVoice {
    type Params = FakeParams;
    type State = FakeState;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn default_params(&self) -> FakeParams {
        FakeParams { gain: 0.5 }
    }

    fn set_speed(&self, params: &mut FakeParams, speed: f64) {
        params.gain *= speed as f32;
    }

    fn set_speaker(&self, _: &mut FakeParams, _: &SpeakerRef) -> Result<(), SynthError> {
        Err(SynthError::CannotClone)
    }

    fn sentences(&self, text: &str) -> Result<Vec<Sentence>, SynthError> {
        Ok(text
            .split('|')
            .map(|part| Sentence {
                phonemes: part.chars().map(String::from).collect(),
                ids: part.bytes().map(i64::from).collect(),
                pause_after: None,
            })
            .collect())
    }

    fn start(&self, sentence: &Sentence, params: &FakeParams) -> Result<FakeState, SynthError> {
        Ok(FakeState {
            text: sentence.phonemes.concat(),
            steps_taken: 0,
            gain: params.gain,
        })
    }

    fn step(&self, batch: &mut [&mut FakeState]) -> Result<Vec<Chunk>, StepError> {
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.starts
            .lock()
            .unwrap()
            .push((batch[0].text.clone(), running));
        self.log.lock().unwrap().push((true, batch[0].text.clone()));
        self.batches.lock().unwrap().push(batch.len());
        std::thread::sleep(self.step_delay);
        let result = (|| {
            if batch.len() > self.oom_above {
                return Err(ProbeError::OutOfMemory);
            }
            if batch.iter().any(|s| s.text == "panic") {
                panic!("the fake model panics on request");
            }
            if batch.iter().any(|s| s.text == "fail") {
                return Err(ProbeError::Failed(SynthError::EmptyText));
            }
            Ok(batch
                .iter_mut()
                .map(|s| {
                    let audio = expected_chunk(&s.text, s.steps_taken, s.gain);
                    s.steps_taken += 1;
                    Chunk {
                        audio,
                        done: s.steps_taken == steps(&s.text),
                    }
                })
                .collect())
        })();
        self.log
            .lock()
            .unwrap()
            .push((false, batch[0].text.clone()));
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.steps_done.fetch_add(1, Ordering::SeqCst);
        result
    }

    fn smoke_test(&self) -> Result<(), SynthError> {
        Ok(())
    }
}

fn start(voice: &Arc<FakeVoice>, config: RuntimeConfig) -> Runtime {
    Runtime::start(
        vec![Arc::clone(voice) as Arc<dyn Voice>],
        config,
        Arc::new(Metrics::new(Vec::new())),
    )
    .expect("start the runtime")
}

fn config(workers: usize, max_batch: usize, max_wait_ms: u64) -> RuntimeConfig {
    RuntimeConfig {
        workers,
        max_batch,
        max_wait: Duration::from_millis(max_wait_ms),
        stream_threads: 1,
        max_pending_requests: 64,
    }
}

/// Silence of 0.05 s (5 samples), no normalization, volume 2 (so clipping shows).
const DELIVERY: Delivery = Delivery {
    post: PostProcess {
        normalize: false,
        volume: 2.0,
    },
    sentence_silence: 0.05,
};

/// What the runtime must produce for `text` at `gain`, built from the
/// fake's formula, the post-processing and the silence by hand.
fn expected_audio(text: &str, gain: f32) -> Vec<f32> {
    let mut out = Vec::new();
    for (i, part) in text.split('|').enumerate() {
        if i > 0 {
            out.extend(std::iter::repeat_n(0.0, 5));
        }
        for k in 0..steps(part) {
            out.extend(
                expected_chunk(part, k, gain)
                    .iter()
                    .map(|v| (v * 2.0).clamp(-1.0, 1.0)),
            );
        }
    }
    out
}

fn submit(runtime: &Runtime, text: &str, gain: f32) -> InOrder {
    let voice = &runtime.voices()[0];
    let mut request = Request::default();
    request.overrides.insert("gain".into(), gain.into());
    let params = voice.params(&request).expect("params");
    let sentences = voice.sentences(text).expect("sentences");
    runtime
        .reserve()
        .expect("a place")
        .submit(0, &sentences, &params, DELIVERY)
        .expect("submit")
}

fn collect(mut order: InOrder) -> Result<Vec<f32>, Arc<SynthError>> {
    let mut audio = Vec::new();
    while let Some(chunk) = order.next_blocking() {
        audio.extend(chunk?);
    }
    Ok(audio)
}

const TEXTS: [(&str, f32); 3] = [
    ("hello|world", 0.5),
    ("a longer sentence|b", 0.9),
    ("third one", 0.3),
];

#[test]
fn every_requests_audio_in_a_shared_batch_equals_its_solo_render() {
    let shared = Arc::new(FakeVoice::new(usize::MAX, Duration::from_millis(2)));
    let runtime = start(&shared, config(1, 4, 200));
    let orders: Vec<InOrder> = TEXTS.iter().map(|(t, g)| submit(&runtime, t, *g)).collect();
    let batched: Vec<Vec<f32>> = orders
        .into_iter()
        .map(|o| collect(o).expect("audio"))
        .collect();
    assert!(
        shared.batches.lock().unwrap().iter().any(|&b| b > 1),
        "the requests never shared a step: {:?}",
        shared.batches.lock().unwrap()
    );

    let solo_voice = Arc::new(FakeVoice::new(usize::MAX, Duration::ZERO));
    let solo = start(&solo_voice, config(1, 1, 0));
    for ((text, gain), batched) in TEXTS.iter().zip(batched) {
        let alone = collect(submit(&solo, text, *gain)).expect("solo audio");
        assert_eq!(batched, alone, "{text:?} differs between batch and solo");
        assert_eq!(batched, expected_audio(text, *gain), "{text:?}");
    }
    assert!(solo_voice.batches.lock().unwrap().iter().all(|&b| b == 1));
}

#[test]
fn a_panicking_model_fails_its_request_and_the_worker_keeps_serving() {
    let voice = Arc::new(FakeVoice::new(usize::MAX, Duration::ZERO));
    let runtime = start(&voice, config(1, 1, 0));
    let failed = collect(submit(&runtime, "fine|panic|never", 0.5));
    assert!(
        matches!(failed.as_ref().map_err(|e| &**e), Err(SynthError::Panicked)),
        "{:?}",
        failed.err()
    );
    let after = collect(submit(&runtime, "hello|world", 0.5)).expect("the worker survived");
    assert_eq!(after, expected_audio("hello|world", 0.5));
}

#[test]
fn a_failing_batch_is_retried_one_by_one_so_only_the_bad_request_fails() {
    let voice = Arc::new(FakeVoice::new(usize::MAX, Duration::from_millis(2)));
    let runtime = start(&voice, config(1, 4, 200));
    let bad = submit(&runtime, "fail", 0.5);
    let good = submit(&runtime, "hello|world", 0.7);
    let bad = collect(bad);
    assert!(
        matches!(bad.as_ref().map_err(|e| &**e), Err(SynthError::EmptyText)),
        "{:?}",
        bad.err()
    );
    assert_eq!(
        collect(good).expect("the good request"),
        expected_audio("hello|world", 0.7)
    );
    let batches = voice.batches.lock().unwrap().clone();
    assert!(
        batches.iter().any(|&b| b > 1),
        "no shared step: {batches:?}"
    );
    assert!(batches.contains(&1), "no retry alone: {batches:?}");
}

#[test]
fn out_of_memory_halves_the_batch_until_it_fits_and_loses_nothing() {
    let voice = Arc::new(FakeVoice::new(1, Duration::from_millis(2)));
    let runtime = start(&voice, config(1, 4, 200));
    let orders: Vec<InOrder> = TEXTS.iter().map(|(t, g)| submit(&runtime, t, *g)).collect();
    for ((text, gain), order) in TEXTS.iter().zip(orders) {
        assert_eq!(
            collect(order).expect("audio"),
            expected_audio(text, *gain),
            "{text:?}"
        );
    }
    let batches = voice.batches.lock().unwrap().clone();
    assert!(
        batches.windows(2).any(|w| w[0] > 1 && w[1] == w[0] / 2),
        "no halving: {batches:?}"
    );
}

#[test]
fn dropping_a_request_takes_its_queued_sentences_off_the_queue() {
    let voice = Arc::new(FakeVoice::new(usize::MAX, Duration::from_millis(20)));
    let runtime = start(&voice, config(1, 1, 0));
    let text = vec!["sentence"; 30].join("|");
    let mut order = submit(&runtime, &text, 0.5);
    assert!(matches!(order.next_blocking(), Some(Ok(_))));
    drop(order);
    std::thread::sleep(Duration::from_millis(200));
    let steps = voice.steps_done.load(Ordering::SeqCst);
    // 30 sentences of 3 steps: all of them would be 90 steps.
    assert!(steps < 10, "{steps} steps ran after the request went away");
    // The runtime is free for the next request.
    let next = collect(submit(&runtime, "hello", 0.5)).expect("audio");
    assert_eq!(next, expected_audio("hello", 0.5));
}

#[test]
fn an_idle_engine_runs_a_requests_first_sentence_alone() {
    let voice = Arc::new(FakeVoice::new(usize::MAX, Duration::from_millis(5)));
    let runtime = start(&voice, config(2, 1, 0));
    let text = "first|second|third|fourth";
    let audio = collect(submit(&runtime, text, 0.5)).expect("audio");
    assert_eq!(audio, expected_audio(text, 0.5));
    // No other sentence began before the first sentence's first step ended.
    let log = voice.log.lock().unwrap().clone();
    let first_done = log
        .iter()
        .position(|e| *e == (false, "first".to_string()))
        .expect("the first sentence stepped");
    assert!(
        log[..first_done].iter().all(|(_, text)| text == "first"),
        "another sentence ran beside the first one's first step: {log:?}"
    );
    let starts = voice.starts.lock().unwrap().clone();
    assert!(
        starts.iter().any(|(_, running)| *running == 2),
        "the later sentences never ran side by side: {starts:?}"
    );
}

#[test]
fn parameters_from_the_edges_are_checked_by_the_family() {
    let voice = FakeVoice::new(usize::MAX, Duration::ZERO);
    let mut request = Request::default();
    request.overrides.insert("volume".into(), 1.0.into());
    let refused = Voice::params(&voice, &request)
        .err()
        .expect("an unknown field");
    assert!(refused.to_string().contains("volume"), "{refused}");
    request.overrides.clear();
    request.overrides.insert("gain".into(), "loud".into());
    assert!(Voice::params(&voice, &request).is_err());
    request.overrides.clear();
    request.speed = Some(2.0);
    let params = Voice::params(&voice, &request).expect("speed");
    assert_eq!(voice.params_json(&params), serde_json::json!({"gain": 1.0}));
}

#[test]
fn chunks_come_out_in_order_whatever_order_they_arrive_in() {
    let mut order = Reorder::new(3);
    assert_eq!(order.pop(), None);
    order.insert(1, "b0", false);
    order.insert(2, "c", true);
    assert_eq!(order.pop(), None, "0 has not arrived");
    order.insert(0, "a", true);
    assert_eq!(order.pop(), Some("a"));
    assert_eq!(order.pop(), Some("b0"));
    assert_eq!(order.pop(), None, "b's last chunk has not arrived");
    order.insert(1, "b1", true);
    assert_eq!(order.pop(), Some("b1"));
    // A chunk of a sentence already handed out, or one out of range, is ignored.
    order.insert(0, "again", true);
    order.insert(9, "stray", true);
    assert_eq!(order.pop(), Some("c"));
    assert!(order.done());
}

/// A front end's own pause after a sentence (Kokoro's) replaces the
/// request's sentence silence before the next one; none follows the last.
#[test]
fn a_sentences_own_pause_replaces_the_sentence_silence() {
    let voice = Arc::new(FakeVoice::new(usize::MAX, Duration::ZERO));
    let runtime = start(&voice, config(1, 1, 0));
    let served = &runtime.voices()[0];
    let mut request = Request::default();
    request.overrides.insert("gain".into(), 0.5.into());
    let params = served.params(&request).expect("params");
    let mut sentences = served.sentences("ab|cd|ef").expect("sentences");
    sentences[0].pause_after = Some(0.2); // 20 samples at the fake's 100 Hz
    sentences[2].pause_after = Some(1.0); // after the last: nothing
    let audio = collect(
        runtime
            .reserve()
            .expect("a place")
            .submit(0, &sentences, &params, DELIVERY)
            .expect("submit"),
    )
    .expect("audio");
    let mut want = Vec::new();
    for (i, part) in ["ab", "cd", "ef"].iter().enumerate() {
        want.extend(std::iter::repeat_n(0.0, [0, 20, 5][i]));
        for k in 0..steps(part) {
            want.extend(
                expected_chunk(part, k, 0.5)
                    .iter()
                    .map(|v| (v * 2.0).clamp(-1.0, 1.0)),
            );
        }
    }
    assert_eq!(audio, want);
}

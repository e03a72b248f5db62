//! The sentence scheduler: a queue and a worker per device stream, not a mutex.
//!
//! A request's sentences are queued together; each worker takes the oldest
//! sentence and, when batching pays (accelerators: the performance layer's
//! batch size), waits at most `max_wait` for more sentences of the same voice
//! to fill one model call. Results go back per request with their index, so
//! the request re-assembles them in order ([`InOrder`]).
//!
//! On the CPU the plan has batch 1 and two sentence streams of one thread
//! each (batching lost there, streams won: `docs/PERFORMANCE.md`); a worker
//! that is the only one busy with an empty queue runs on every core instead,
//! so a lone request is as fast as `vivace say`. Each worker builds its own
//! thread pool once, at start.
//!
//! Cancellation is a flag per request: a worker drops queued sentences whose
//! request went away (client disconnect, timeout) without running them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vivace_frontend::audio::PostProcess;
use vivace_models::vits::SynthesisParams;

use super::metrics::Metrics;
use crate::synth::{SynthError, Synthesizer};

/// How the workers share the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Worker threads, each one sentence stream (the plan's `sentence_threads`).
    pub workers: usize,
    /// Most sentences in one model call (the plan's batch size).
    pub max_batch: usize,
    /// Longest a worker waits for company before running a partial batch.
    pub max_wait: Duration,
    /// Threads of each worker's own pool while others are busy (the plan's
    /// `stream_threads`); at or above rayon's pool size, workers share it.
    pub stream_threads: usize,
    /// Speech requests accepted and not yet fully synthesized; beyond it,
    /// new requests are refused (503).
    pub max_pending_requests: usize,
}

/// A voice the service speaks with.
pub struct ServedVoice {
    /// Its name (the one requests use), language, rate and speakers.
    pub info: crate::voice_store::VoiceInfo,
    /// The loaded voice.
    pub synth: Synthesizer,
    /// Per-sentence post-processing (Piper's normalization and volume).
    pub post: PostProcess,
}

/// One sentence's audio (post-processed, `[-1, 1]`) or why it failed.
pub type SentenceResult = Result<Vec<f32>, Arc<SynthError>>;

/// A sentence waiting for a worker.
struct Job {
    voice: usize,
    ids: Vec<i64>,
    params: SynthesisParams,
    index: usize,
    request: Arc<RequestState>,
    reply: mpsc::UnboundedSender<(usize, SentenceResult)>,
}

/// What workers know of a request.
#[derive(Default)]
struct RequestState {
    cancelled: AtomicBool,
}

/// The queue and what the workers share.
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    voices: Arc<[ServedVoice]>,
    config: SchedulerConfig,
    metrics: Arc<Metrics>,
    pending_requests: AtomicUsize,
}

struct Queue {
    jobs: VecDeque<Job>,
    busy_workers: usize,
    stopping: bool,
}

/// The request queue is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the synthesis queue is full ({0} requests pending): retry later")]
pub struct QueueFull(pub usize);

/// The workers and their queue.
pub struct Scheduler {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    /// Starts `config.workers` worker threads over `voices`.
    pub fn start(
        voices: Arc<[ServedVoice]>,
        config: SchedulerConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let config = SchedulerConfig {
            workers: config.workers.max(1),
            max_batch: config.max_batch.max(1),
            ..config
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                busy_workers: 0,
                stopping: false,
            }),
            ready: Condvar::new(),
            voices,
            config,
            metrics,
            pending_requests: AtomicUsize::new(0),
        });
        let workers = (0..config.workers)
            .map(|id| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("vivace-worker-{id}"))
                    .spawn(move || worker(&shared, id))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self { shared, workers })
    }

    /// The voices served, in the order requests index them.
    pub fn voices(&self) -> &[ServedVoice] {
        &self.shared.voices
    }

    /// The configuration the workers run with.
    pub fn config(&self) -> SchedulerConfig {
        self.shared.config
    }

    /// Queues one request's sentences (model ids, in order) for `voice`;
    /// refused when `max_pending_requests` are already pending.
    pub fn submit(
        &self,
        voice: usize,
        sentences: Vec<Vec<i64>>,
        params: SynthesisParams,
    ) -> Result<InOrder, QueueFull> {
        let limit = self.shared.config.max_pending_requests;
        let admitted =
            self.shared
                .pending_requests
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limit).then_some(n + 1)
                });
        if admitted.is_err() {
            return Err(QueueFull(limit));
        }
        self.shared.metrics.requests_in_flight.inc();
        let request = Arc::new(RequestState::default());
        let (reply, results) = mpsc::unbounded_channel();
        let count = sentences.len();
        {
            let mut queue = lock(&self.shared.queue);
            queue
                .jobs
                .extend(sentences.into_iter().enumerate().map(|(index, ids)| Job {
                    voice,
                    ids,
                    params,
                    index,
                    request: Arc::clone(&request),
                    reply: reply.clone(),
                }));
            self.shared.metrics.queue_depth.set(queue.jobs.len() as i64);
        }
        self.shared.ready.notify_all();
        Ok(InOrder {
            results,
            pending: BTreeMap::new(),
            next: 0,
            count,
            guard: RequestGuard {
                request,
                shared: Arc::clone(&self.shared),
            },
        })
    }

    /// Lets the workers finish every queued sentence, then stops them.
    pub fn shutdown(self) {
        lock(&self.shared.queue).stopping = true;
        self.shared.ready.notify_all();
        for worker in self.workers {
            if worker.join().is_err() {
                tracing::error!("a synthesis worker panicked");
            }
        }
    }
}

/// Locks the queue; a worker that panicked holding it leaves it usable
/// (the queue's state is valid between statements).
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Releases a request's place in the queue and cancels its unstarted
/// sentences when dropped (finished, failed, timed out or disconnected).
struct RequestGuard {
    request: Arc<RequestState>,
    shared: Arc<Shared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.request.cancelled.store(true, Ordering::Release);
        self.shared.pending_requests.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.requests_in_flight.dec();
    }
}

/// One request's sentences, handed out in order as they finish.
pub struct InOrder {
    results: mpsc::UnboundedReceiver<(usize, SentenceResult)>,
    pending: BTreeMap<usize, SentenceResult>,
    next: usize,
    count: usize,
    guard: RequestGuard,
}

impl InOrder {
    /// The next sentence in order; `None` after the last. Dropping `self`
    /// cancels what has not started.
    pub async fn next(&mut self) -> Option<SentenceResult> {
        if self.next >= self.count {
            return None;
        }
        loop {
            if let Some(result) = self.pending.remove(&self.next) {
                self.next += 1;
                return Some(result);
            }
            match self.results.recv().await {
                Some((index, result)) => {
                    self.pending.insert(index, result);
                }
                // Every sender is gone: the workers stopped without it.
                None => {
                    self.next = self.count;
                    return Some(Err(Arc::new(SynthError::WorkersStopped)));
                }
            }
        }
    }

    /// Sentences in the request.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the request has no sentences.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Marks the request cancelled now (its unstarted sentences are dropped).
    pub fn cancel(&self) {
        self.guard.request.cancelled.store(true, Ordering::Release);
    }
}

/// Takes the next batch: the oldest live sentence, then (batch > 1) more of
/// the same voice, waiting at most `max_wait` for them. Returns the batch and
/// whether this worker is the only one busy with nothing else queued; `None`
/// once stopping with an empty queue.
fn next_batch(shared: &Shared) -> Option<(Vec<Job>, bool)> {
    let config = shared.config;
    let mut queue = lock(&shared.queue);
    let first = loop {
        drop_cancelled_front(&mut queue, shared);
        if let Some(job) = queue.jobs.pop_front() {
            break job;
        }
        if queue.stopping {
            return None;
        }
        queue = shared
            .ready
            .wait(queue)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    };
    let voice = first.voice;
    let mut batch = vec![first];
    let deadline = Instant::now() + config.max_wait;
    while batch.len() < config.max_batch {
        let found = queue
            .jobs
            .iter()
            .position(|j| j.voice == voice && !j.request.cancelled.load(Ordering::Acquire));
        if let Some(at) = found {
            if let Some(job) = queue.jobs.remove(at) {
                batch.push(job);
            }
            continue;
        }
        let now = Instant::now();
        if now >= deadline || queue.stopping {
            break;
        }
        queue = shared
            .ready
            .wait_timeout(queue, deadline - now)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    queue.busy_workers += 1;
    let alone = queue.busy_workers == 1 && queue.jobs.is_empty();
    shared.metrics.queue_depth.set(queue.jobs.len() as i64);
    Some((batch, alone))
}

/// Drops queued sentences of cancelled requests from the queue's front.
fn drop_cancelled_front(queue: &mut Queue, shared: &Shared) {
    while queue
        .jobs
        .front()
        .is_some_and(|j| j.request.cancelled.load(Ordering::Acquire))
    {
        queue.jobs.pop_front();
        shared.metrics.sentences_cancelled.inc();
    }
    shared.metrics.queue_depth.set(queue.jobs.len() as i64);
}

/// A worker: takes batches until the scheduler stops.
fn worker(shared: &Shared, id: usize) {
    let all_threads = rayon::current_num_threads();
    // A lone worker always has every core; several split them when busy together.
    let own_pool = (shared.config.workers > 1 && shared.config.stream_threads < all_threads)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(shared.config.stream_threads.max(1))
                .thread_name(move |i| format!("vivace-worker-{id}-{i}"))
                .build()
                .map_err(|e| tracing::warn!("worker {id} shares the global pool: {e}"))
                .ok()
        })
        .flatten();
    while let Some((batch, alone)) = next_batch(shared) {
        let run = || run_batch(shared, &batch);
        // A panic in the model fails this batch's requests, not the worker.
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&own_pool, alone) {
                (Some(pool), false) => pool.install(run),
                _ => run(),
            }));
        if ran.is_err() {
            tracing::error!(
                "synthesis panicked: failing the {} sentence(s) of its batch",
                batch.len()
            );
            let e = Arc::new(SynthError::Panicked);
            for job in &batch {
                let _ = job.reply.send((job.index, Err(Arc::clone(&e))));
            }
        }
        lock(&shared.queue).busy_workers -= 1;
    }
}

/// Synthesizes one batch (all of one voice) and replies to each request.
fn run_batch(shared: &Shared, batch: &[Job]) {
    let Some(voice) = shared.voices.get(batch[0].voice) else {
        return;
    };
    let items: Vec<(&[i64], SynthesisParams)> =
        batch.iter().map(|j| (j.ids.as_slice(), j.params)).collect();
    let rate = f64::from(voice.synth.sample_rate());
    let mut done = 0;
    while done < items.len() {
        let start = Instant::now();
        let outcome = voice
            .synth
            .synthesize_items(&items[done..], shared.config.max_batch);
        match outcome {
            Ok((audios, fitted)) => {
                let fitted = fitted.max(1).min(audios.len());
                let seconds: f64 = audios.iter().map(|a| a.len() as f64 / rate).sum();
                shared.metrics.batch_size.observe(fitted as f64);
                shared.metrics.audio_seconds.inc_by(seconds);
                if seconds > 0.0 {
                    shared
                        .metrics
                        .real_time_factor
                        .observe(start.elapsed().as_secs_f64() / seconds);
                }
                for (job, mut audio) in batch[done..].iter().zip(audios) {
                    voice.post.apply(&mut audio);
                    // A request that went away no longer listens: not an error.
                    let _ = job.reply.send((job.index, Ok(audio)));
                }
                done += fitted;
            }
            Err(e) => {
                tracing::error!("synthesis failed: {e}");
                let e = Arc::new(e);
                for job in &batch[done..] {
                    let _ = job.reply.send((job.index, Err(Arc::clone(&e))));
                }
                return;
            }
        }
    }
}

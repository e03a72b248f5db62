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
//! Cancellation is the end of a request's [`InOrder`]: when it is dropped
//! (finished, failed, timed out, client gone), the request's sentences still
//! queued leave the queue unsynthesized.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Speech requests holding a place (from acceptance until their audio is
    /// handed to the connection, or they fail or are dropped); beyond it,
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
    /// The request it belongs to (its number).
    request: u64,
    reply: mpsc::UnboundedSender<(usize, SentenceResult)>,
}

/// The queue and what the workers share.
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    voices: Arc<[ServedVoice]>,
    config: SchedulerConfig,
    metrics: Arc<Metrics>,
    pending_requests: AtomicUsize,
    /// Numbers requests, so a request's jobs can be found in the queue.
    next_request: AtomicU64,
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
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
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
            next_request: AtomicU64::new(0),
        });
        let mut workers = Vec::new();
        for id in 0..config.workers {
            let worker_shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("vivace-worker-{id}"))
                .spawn(move || worker(&worker_shared, id));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    // Stop the workers already started before failing.
                    stop(&shared);
                    return Err(e);
                }
            }
        }
        Ok(Self {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// The voices served, in the order requests index them.
    pub fn voices(&self) -> &[ServedVoice] {
        &self.shared.voices
    }

    /// Takes a place for one request, before any work is spent on it;
    /// refused when `max_pending_requests` are already pending. The place
    /// is held until the request's [`InOrder`] (or the [`Reservation`]) is
    /// dropped.
    pub fn reserve(&self) -> Result<Reservation, QueueFull> {
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
        Ok(Reservation {
            guard: RequestGuard {
                request: self.shared.next_request.fetch_add(1, Ordering::Relaxed),
                shared: Arc::clone(&self.shared),
            },
        })
    }

    /// Lets the workers finish every queued sentence, then stops them and
    /// waits for them.
    pub fn shutdown(&self) {
        stop(&self.shared);
        let workers = std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for worker in workers {
            if worker.join().is_err() {
                tracing::error!("a synthesis worker panicked");
            }
        }
    }
}

impl Drop for Scheduler {
    /// Workers still waiting for work stop (they finish what is queued).
    fn drop(&mut self) {
        stop(&self.shared);
    }
}

/// Tells the workers to stop once the queue is empty.
fn stop(shared: &Shared) {
    lock(&shared.queue).stopping = true;
    shared.ready.notify_all();
}

/// A request's place in the queue, taken before its text is phonemized.
pub struct Reservation {
    guard: RequestGuard,
}

impl Reservation {
    /// Queues the request's sentences (model ids, in order) for `voice`.
    pub fn submit(
        self,
        voice: usize,
        sentences: Vec<Vec<i64>>,
        params: SynthesisParams,
    ) -> InOrder {
        let shared = &self.guard.shared;
        let (reply, results) = mpsc::unbounded_channel();
        let count = sentences.len();
        {
            let mut queue = lock(&shared.queue);
            queue
                .jobs
                .extend(sentences.into_iter().enumerate().map(|(index, ids)| Job {
                    voice,
                    ids,
                    params,
                    index,
                    request: self.guard.request,
                    reply: reply.clone(),
                }));
            shared.metrics.queue_depth.set(queue.jobs.len() as i64);
        }
        shared.ready.notify_all();
        InOrder {
            results,
            order: Reorder::new(count),
            _guard: self.guard,
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

/// Releases a request's place and removes its unstarted sentences from the
/// queue when dropped (finished, failed, timed out or disconnected); a
/// sentence a worker already holds is finished and its audio discarded.
struct RequestGuard {
    request: u64,
    shared: Arc<Shared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        {
            let mut queue = lock(&self.shared.queue);
            let before = queue.jobs.len();
            queue.jobs.retain(|j| j.request != self.request);
            let removed = before - queue.jobs.len();
            self.shared
                .metrics
                .sentences_cancelled
                .inc_by(removed as u64);
            self.shared.metrics.queue_depth.set(queue.jobs.len() as i64);
        }
        self.shared.pending_requests.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.requests_in_flight.dec();
    }
}

/// Puts results that arrive in any order back in order.
#[derive(Debug)]
struct Reorder<T> {
    pending: BTreeMap<usize, T>,
    next: usize,
    count: usize,
}

impl<T> Reorder<T> {
    fn new(count: usize) -> Self {
        Self {
            pending: BTreeMap::new(),
            next: 0,
            count,
        }
    }

    /// Files result `index` (one already handed out, or out of range, is ignored).
    fn insert(&mut self, index: usize, value: T) {
        if index >= self.next && index < self.count {
            self.pending.entry(index).or_insert(value);
        }
    }

    /// The next result in order, if it has arrived.
    fn pop(&mut self) -> Option<T> {
        let value = self.pending.remove(&self.next)?;
        self.next += 1;
        Some(value)
    }

    fn done(&self) -> bool {
        self.next >= self.count
    }

    /// Marks everything handed out (after a fatal error).
    fn finish(&mut self) {
        self.next = self.count;
        self.pending.clear();
    }
}

/// One request's sentences, handed out in order as they finish.
pub struct InOrder {
    results: mpsc::UnboundedReceiver<(usize, SentenceResult)>,
    order: Reorder<SentenceResult>,
    /// Held for its drop: the request's place and its queued sentences.
    _guard: RequestGuard,
}

impl InOrder {
    /// The next sentence in order; `None` after the last. Dropping `self`
    /// removes what has not started from the queue. Cancel-safe: dropping
    /// the future loses nothing.
    pub async fn next(&mut self) -> Option<SentenceResult> {
        if self.order.done() {
            return None;
        }
        loop {
            if let Some(result) = self.order.pop() {
                return Some(result);
            }
            match self.results.recv().await {
                Some((index, result)) => self.order.insert(index, result),
                // Every sender is gone: the workers stopped without it.
                None => {
                    self.order.finish();
                    return Some(Err(Arc::new(SynthError::WorkersStopped)));
                }
            }
        }
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
        let found = queue.jobs.iter().position(|j| j.voice == voice);
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
        let answered = AtomicUsize::new(0);
        let run = || run_batch(shared, &batch, &answered);
        // A panic in the model fails this batch's unanswered sentences, not the worker.
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&own_pool, alone) {
                (Some(pool), false) => pool.install(run),
                _ => run(),
            }));
        if ran.is_err() {
            tracing::error!(
                "synthesis panicked: failing {} sentence(s) of its batch",
                batch.len() - answered.load(Ordering::Relaxed)
            );
            reply_error(
                &batch[answered.load(Ordering::Relaxed)..],
                SynthError::Panicked,
            );
        }
        lock(&shared.queue).busy_workers -= 1;
    }
}

/// Synthesizes one batch (all of one voice) and replies to each request in
/// batch order, counting the replies in `answered`. When a model call fails
/// with several sentences left, they are retried one by one, so one bad
/// sentence fails only its own request.
fn run_batch(shared: &Shared, batch: &[Job], answered: &AtomicUsize) {
    let Some(voice) = shared.voices.get(batch[0].voice) else {
        reply_error(batch, SynthError::WorkersStopped);
        answered.store(batch.len(), Ordering::Relaxed);
        return;
    };
    let items: Vec<(&[i64], SynthesisParams)> =
        batch.iter().map(|j| (j.ids.as_slice(), j.params)).collect();
    let rate = f64::from(voice.synth.sample_rate());
    let mut batch_size = shared.config.max_batch;
    while answered.load(Ordering::Relaxed) < items.len() {
        let done = answered.load(Ordering::Relaxed);
        let start = Instant::now();
        match voice.synth.synthesize_items(&items[done..], batch_size) {
            Ok((audios, fitted)) if fitted > 0 && audios.len() == fitted => {
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
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {
                tracing::error!("the model returned no audio for a batch");
                reply_error(&batch[done..], SynthError::WorkersStopped);
                answered.store(batch.len(), Ordering::Relaxed);
            }
            Err(e) if items.len() - done > 1 && batch_size > 1 => {
                tracing::warn!("a batch failed ({e}); retrying its sentences one by one");
                batch_size = 1;
            }
            Err(e) => {
                tracing::error!("synthesis failed: {e}");
                reply_error(&batch[done..done + 1], e);
                answered.store(done + 1, Ordering::Relaxed);
            }
        }
    }
}

/// Fails `jobs` with `error`.
fn reply_error(jobs: &[Job], error: SynthError) {
    let error = Arc::new(error);
    for job in jobs {
        let _ = job.reply.send((job.index, Err(Arc::clone(&error))));
    }
}

#[cfg(test)]
mod tests {
    use super::Reorder;

    #[test]
    fn results_come_out_in_order_whatever_order_they_arrive_in() {
        let mut order = Reorder::new(4);
        assert_eq!(order.pop(), None);
        order.insert(2, "c");
        order.insert(1, "b");
        assert_eq!(order.pop(), None, "0 has not arrived");
        order.insert(0, "a");
        assert_eq!(order.pop(), Some("a"));
        assert_eq!(order.pop(), Some("b"));
        assert_eq!(order.pop(), Some("c"));
        assert_eq!(order.pop(), None);
        assert!(!order.done());
        // A duplicate of a result already handed out, or one out of range, is ignored.
        order.insert(1, "again");
        order.insert(9, "stray");
        order.insert(3, "d");
        assert_eq!(order.pop(), Some("d"));
        assert!(order.done());
    }
}

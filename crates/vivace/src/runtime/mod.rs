//! The runtime: one engine that `vivace say` and `vivace serve` both run.
//!
//! A request's sentences are started as sequences ([`Voice::start`]) and
//! queued together; each worker takes the oldest sequence and, when
//! batching pays (accelerators: the performance layer's batch size), waits
//! at most `max_wait` for more sequences of the same voice to fill one
//! step ([`Voice::step`]). A sequence that is not done after its step goes
//! back to the front of the queue; one that is done leaves it. Out of memory
//! halves the batch and retries; a failing batch is retried sequence by
//! sequence, so one bad sentence fails only its own request; a panic in a
//! model fails its batch, not the worker. Chunks go back per request with
//! their sentence's index, post-processed, the silence between sentences
//! in front of each sentence but the first, and the request re-assembles
//! them in order ([`InOrder`]).
//!
//! Threads: on the CPU the plan has batch 1 and two sentence streams of one
//! thread each (batching lost there, streams won: `docs/PERFORMANCE.md`).
//! A worker that is the only one busy with an empty queue runs on every
//! core, and so does a request's first sentence when the engine was idle:
//! the other workers wait until it is done, so the first audio comes as
//! early as with a single stream. Each worker builds its own thread pool
//! once, at start.
//!
//! Cancellation is the end of a request's [`InOrder`]: when it is dropped
//! (finished, failed, timed out, client gone), the request's sequences still
//! queued leave the queue unsynthesized.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vivace_frontend::audio::{silence_samples, PostProcess};
use vivace_perf::batch::run_with_backoff;

use crate::family::{Chunk, Params, Sentence, Sequence, Voice};
use crate::metrics::Metrics;
use crate::synth::SynthError;

/// How the workers share the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Worker threads, each one sentence stream (the plan's `sentence_threads`).
    pub workers: usize,
    /// Most sequences in one step (the plan's batch size).
    pub max_batch: usize,
    /// Longest a worker waits for company before running a partial batch.
    pub max_wait: Duration,
    /// Threads of each worker's own pool while others are busy (the plan's
    /// `stream_threads`); at or above rayon's pool size, workers share it.
    pub stream_threads: usize,
    /// Requests holding a place (from acceptance until their audio is
    /// handed out, or they fail or are dropped); beyond it, new requests are
    /// refused ([`QueueFull`]).
    pub max_pending_requests: usize,
}

impl RuntimeConfig {
    /// One worker on every core, `max_batch` sentences per step, no waiting
    /// for company, no bound on requests: one caller speaking (`vivace say`).
    pub fn single_caller(max_batch: usize) -> Self {
        Self {
            workers: 1,
            max_batch,
            max_wait: Duration::ZERO,
            stream_threads: usize::MAX,
            max_pending_requests: usize::MAX,
        }
    }
}

/// What is done to a request's audio on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Delivery {
    /// Per-sentence post-processing (Piper's normalization and volume).
    pub post: PostProcess,
    /// Seconds of silence between sentences.
    pub sentence_silence: f32,
}

/// One piece of a request's audio (post-processed, `[-1, 1]`, with the
/// silence before its sentence), or why the request failed.
pub type ChunkResult = Result<Vec<f32>, Arc<SynthError>>;

/// What a worker sends back: one sentence's chunk, or its failure.
type Reply = (usize, Result<Chunk, Arc<SynthError>>);

/// A sequence waiting for a worker.
struct Job {
    voice: usize,
    sequence: Sequence,
    index: usize,
    /// Whether its first chunk has been sent (the silence goes before it).
    started: bool,
    /// Seconds of silence before its first chunk: the previous sentence's
    /// own pause, else the request's sentence silence (none before the first).
    silence_before: f32,
    /// Its last chunk, or its failure, has been sent.
    finished: bool,
    /// The request it belongs to (its number).
    request: u64,
    delivery: Delivery,
    reply: mpsc::UnboundedSender<Reply>,
}

/// The queue and what the workers share.
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    voices: Vec<Arc<dyn Voice>>,
    config: RuntimeConfig,
    metrics: Arc<Metrics>,
    pending_requests: AtomicUsize,
    /// Numbers requests, so a request's jobs can be found in the queue.
    next_request: AtomicU64,
}

struct Queue {
    jobs: VecDeque<Job>,
    busy_workers: usize,
    /// A request's first sentence runs on every core: the others wait.
    lead_running: bool,
    stopping: bool,
}

/// The request queue is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the synthesis queue is full ({0} requests pending): retry later")]
pub struct QueueFull(pub usize);

/// The workers and their queue.
pub struct Runtime {
    shared: Arc<Shared>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Runtime {
    /// Starts `config.workers` worker threads over `voices`.
    pub fn start(
        voices: Vec<Arc<dyn Voice>>,
        config: RuntimeConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let config = RuntimeConfig {
            workers: config.workers.max(1),
            max_batch: config.max_batch.max(1),
            ..config
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                busy_workers: 0,
                lead_running: false,
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

    /// The voices, in the order requests index them.
    pub fn voices(&self) -> &[Arc<dyn Voice>] {
        &self.shared.voices
    }

    /// The configuration it runs with.
    pub fn config(&self) -> RuntimeConfig {
        self.shared.config
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

    /// Lets the workers finish every queued sequence, then stops them and
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

impl Drop for Runtime {
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
    /// Starts the request's sentences (in order) on `voice` with `params`
    /// and queues them; their audio comes out of the returned [`InOrder`].
    /// An index past the served voices, or a sentence the voice cannot
    /// start, is an error and queues nothing.
    pub fn submit(
        self,
        voice: usize,
        sentences: &[Sentence],
        params: &Params,
        delivery: Delivery,
    ) -> Result<InOrder, SynthError> {
        let shared = &self.guard.shared;
        let served = shared
            .voices
            .get(voice)
            .ok_or(SynthError::Mismatch("a voice index past the served voices"))?;
        let sequences = sentences
            .iter()
            .map(|s| served.start(s, params))
            .collect::<Result<Vec<_>, _>>()?;
        let (reply, results) = mpsc::unbounded_channel();
        let count = sequences.len();
        {
            let mut queue = lock(&shared.queue);
            queue
                .jobs
                .extend(sequences.into_iter().enumerate().map(|(index, sequence)| {
                    Job {
                        voice,
                        sequence,
                        index,
                        started: false,
                        silence_before: match index.checked_sub(1) {
                            None => 0.0,
                            Some(previous) => sentences[previous]
                                .pause_after
                                .unwrap_or(delivery.sentence_silence),
                        },
                        finished: false,
                        request: self.guard.request,
                        delivery,
                        reply: reply.clone(),
                    }
                }));
            shared.metrics.queue_depth.set(queue.jobs.len() as i64);
        }
        shared.ready.notify_all();
        Ok(InOrder {
            results,
            order: Reorder::new(count),
            workers_gone: false,
            _guard: self.guard,
        })
    }
}

/// Locks the queue; a worker that panicked holding it leaves it usable
/// (the queue's state is valid between statements).
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Releases a request's place and removes its unstarted sequences from the
/// queue when dropped (finished, failed, timed out or disconnected); a
/// sequence a worker already holds finishes its step and is then dropped.
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

/// Puts sentences whose chunks arrive in any order back in order; a
/// sentence's own chunks arrive in order (one worker steps it at a time).
#[derive(Debug)]
struct Reorder<T> {
    pending: BTreeMap<usize, VecDeque<(T, bool)>>,
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

    /// Files a chunk of sentence `index`, `last` when it ends the sentence
    /// (a sentence already handed out, or out of range, is ignored).
    fn insert(&mut self, index: usize, value: T, last: bool) {
        if index >= self.next && index < self.count {
            self.pending
                .entry(index)
                .or_default()
                .push_back((value, last));
        }
    }

    /// The next chunk in order, if it has arrived.
    fn pop(&mut self) -> Option<T> {
        let chunks = self.pending.get_mut(&self.next)?;
        let (value, last) = chunks.pop_front()?;
        if last {
            self.pending.remove(&self.next);
            self.next += 1;
        }
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

/// One request's audio, handed out in order as it is made.
pub struct InOrder {
    results: mpsc::UnboundedReceiver<Reply>,
    order: Reorder<ChunkResult>,
    /// Every sender is gone: nothing more will arrive.
    workers_gone: bool,
    /// Held for its drop: the request's place and its queued sequences.
    _guard: RequestGuard,
}

impl InOrder {
    /// The next chunk in order (never empty); `None` after the last. After
    /// an error nothing more comes. Dropping `self` removes what has not
    /// started from the queue. Cancel-safe: dropping the future loses
    /// nothing.
    pub async fn next(&mut self) -> Option<ChunkResult> {
        loop {
            if let Some(chunk) = self.ready_chunk() {
                return chunk;
            }
            let received = self.results.recv().await;
            self.file(received);
        }
    }

    /// [`InOrder::next`] for a caller outside an async runtime (`vivace
    /// say`): blocks the thread until the next chunk. Not from inside an
    /// async task (tokio refuses to block its threads: use `next`).
    pub fn next_blocking(&mut self) -> Option<ChunkResult> {
        loop {
            if let Some(chunk) = self.ready_chunk() {
                return chunk;
            }
            let received = self.results.blocking_recv();
            self.file(received);
        }
    }

    /// `Some(next)` when the next chunk (or the end) is known without waiting.
    fn ready_chunk(&mut self) -> Option<Option<ChunkResult>> {
        loop {
            if self.order.done() {
                return Some(None);
            }
            match self.order.pop() {
                Some(Ok(audio)) if audio.is_empty() => continue,
                Some(Ok(audio)) => return Some(Some(Ok(audio))),
                Some(Err(e)) => {
                    self.order.finish();
                    return Some(Some(Err(e)));
                }
                None if self.workers_gone => {
                    self.order.finish();
                    return Some(Some(Err(Arc::new(SynthError::WorkersStopped))));
                }
                None => return None,
            }
        }
    }

    /// Files what a worker sent; `None`: every sender is gone, so the
    /// workers stopped without finishing the request.
    fn file(&mut self, received: Option<Reply>) {
        match received {
            Some((index, Ok(chunk))) => self.order.insert(index, Ok(chunk.audio), chunk.done),
            Some((index, Err(e))) => self.order.insert(index, Err(e), true),
            None => self.workers_gone = true,
        }
    }
}

/// Takes the next batch: the oldest live sequence, then (batch > 1) more of
/// the same voice, waiting at most `max_wait` for them. Returns the batch
/// and how to run it; `None` once stopping with an empty queue.
fn next_batch(shared: &Shared) -> Option<(Vec<Job>, Cores)> {
    let config = shared.config;
    let mut queue = lock(&shared.queue);
    let first = loop {
        if !queue.lead_running {
            if let Some(job) = queue.jobs.pop_front() {
                break job;
            }
            if queue.stopping {
                return None;
            }
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
    let idle = queue.busy_workers == 0;
    queue.busy_workers += 1;
    let cores = if idle && config.workers > 1 && batch.iter().any(|j| j.index == 0 && !j.started) {
        queue.lead_running = true;
        Cores::Lead
    } else if queue.busy_workers == 1 && queue.jobs.is_empty() {
        Cores::All
    } else {
        Cores::Own
    };
    shared.metrics.queue_depth.set(queue.jobs.len() as i64);
    Some((batch, cores))
}

/// Which threads a batch runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cores {
    /// A request's first sentence, on an idle engine: every core, and the
    /// other workers wait until it is done.
    Lead,
    /// The only work there is: every core.
    All,
    /// The worker's own share of the cores.
    Own,
}

/// A worker: takes batches until the runtime stops.
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
    while let Some((mut batch, cores)) = next_batch(shared) {
        let stepped = AtomicUsize::new(0);
        let mut run = || run_step(shared, &mut batch, &stepped);
        // A panic in the model fails this batch's unanswered sequences, not the worker.
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&own_pool, cores) {
                (Some(pool), Cores::Own) => pool.install(run),
                _ => run(),
            }));
        let stepped = stepped.load(Ordering::Relaxed);
        if ran.is_err() {
            tracing::error!(
                "synthesis panicked: failing {} sentence(s) of its batch",
                batch.len() - stepped
            );
            for job in &mut batch[stepped..] {
                fail(job, Arc::new(SynthError::Panicked));
            }
        }
        let mut queue = lock(&shared.queue);
        // Unfinished sequences continue first, in their order, unless their
        // request went away meanwhile.
        for job in batch.into_iter().rev().filter(|j| !j.finished) {
            if !job.reply.is_closed() {
                queue.jobs.push_front(job);
            }
        }
        queue.busy_workers -= 1;
        if cores == Cores::Lead {
            queue.lead_running = false;
        }
        shared.metrics.queue_depth.set(queue.jobs.len() as i64);
        drop(queue);
        shared.ready.notify_all();
    }
}

/// Advances every sequence of `batch` (all of one voice) by one step and
/// sends each its chunk, counting in `stepped` the sequences dealt with.
/// Out of memory halves the step's batch; when a step fails with several
/// sequences, they are retried one by one, so one bad sentence fails only
/// its own request.
fn run_step(shared: &Shared, batch: &mut [Job], stepped: &AtomicUsize) {
    let Some(served) = shared.voices.get(batch[0].voice) else {
        let error = Arc::new(SynthError::WorkersStopped);
        for job in batch.iter_mut() {
            fail(job, Arc::clone(&error));
        }
        stepped.store(batch.len(), Ordering::Relaxed);
        return;
    };
    let rate = f64::from(served.capabilities().sample_rate);
    let mut batch_size = shared.config.max_batch;
    loop {
        let done = stepped.load(Ordering::Relaxed);
        if done >= batch.len() {
            return;
        }
        let rest = &mut batch[done..];
        let start = Instant::now();
        let result = {
            let mut sequences: Vec<&mut Sequence> = rest
                .iter_mut()
                .take(batch_size)
                .map(|j| &mut j.sequence)
                .collect();
            let tried = sequences.len();
            run_with_backoff(tried, |b| served.step(&mut sequences[..b])).map(|r| (r, tried))
        };
        match result {
            Ok(((chunks, fitted), _)) if fitted > 0 && chunks.len() == fitted => {
                let seconds: f64 = chunks.iter().map(|c| c.audio.len() as f64 / rate).sum();
                shared.metrics.batch_size.observe(fitted as f64);
                shared.metrics.audio_seconds.inc_by(seconds);
                if seconds > 0.0 {
                    shared
                        .metrics
                        .real_time_factor
                        .observe(start.elapsed().as_secs_f64() / seconds);
                }
                for (job, chunk) in rest.iter_mut().zip(chunks) {
                    deliver(job, chunk, served.capabilities().sample_rate);
                    stepped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {
                tracing::error!("the model returned no audio for a batch");
                let error = Arc::new(SynthError::Mismatch("a step that returned no chunks"));
                for job in rest.iter_mut() {
                    fail(job, Arc::clone(&error));
                }
                stepped.store(batch.len(), Ordering::Relaxed);
            }
            Err(e) => {
                let error = SynthError::from(e);
                if rest.len() > 1 && batch_size > 1 {
                    tracing::warn!("a batch failed ({error}); retrying its sentences one by one");
                    batch_size = 1;
                } else {
                    // The request's caller reports it (say's exit, the API's 5xx).
                    tracing::debug!("synthesis failed: {error}");
                    fail(&mut rest[0], Arc::new(error));
                    stepped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Post-processes `chunk` and sends it, with the silence before its
/// sentence in front of a sentence's first chunk (all but the first sentence).
fn deliver(job: &mut Job, mut chunk: Chunk, sample_rate: u32) {
    job.delivery.post.apply(&mut chunk.audio);
    if !job.started {
        let silence = silence_samples(sample_rate, job.silence_before);
        if silence > 0 {
            let mut audio = vec![0f32; silence];
            audio.extend_from_slice(&chunk.audio);
            chunk.audio = audio;
        }
    }
    job.started = true;
    job.finished = chunk.done;
    // A request that went away no longer listens: not an error.
    let _ = job.reply.send((job.index, Ok(chunk)));
}

/// Fails `job` with `error`.
fn fail(job: &mut Job, error: Arc<SynthError>) {
    job.finished = true;
    let _ = job.reply.send((job.index, Err(error)));
}

/// Renders `sentences` to the end outside any queue, at most `batch` in one
/// step (halved on out-of-memory): the bench, the batch probe and warm-up
/// use it. Returns the waveforms (raw, not post-processed) of the sentences
/// that fitted in one batch, and how many that was.
pub fn render(
    voice: &dyn Voice,
    sentences: &[Sentence],
    params: &Params,
    batch: usize,
) -> Result<(Vec<Vec<f32>>, usize), SynthError> {
    let mut sequences = sentences
        .iter()
        .take(batch.max(1))
        .map(|s| voice.start(s, params))
        .collect::<Result<Vec<_>, _>>()?;
    let mut audios = vec![Vec::new(); sequences.len()];
    let mut done = vec![false; sequences.len()];
    while done.iter().any(|d| !d) {
        let mut live: Vec<&mut Sequence> = sequences
            .iter_mut()
            .zip(&done)
            .filter(|(_, d)| !**d)
            .map(|(s, _)| s)
            .collect();
        let (chunks, fitted) = run_with_backoff(live.len(), |b| voice.step(&mut live[..b]))?;
        drop(live);
        if fitted == 0 || chunks.len() != fitted {
            return Err(SynthError::Mismatch("a step that returned no chunks"));
        }
        let live_at: Vec<usize> = (0..done.len()).filter(|&i| !done[i]).collect();
        if fitted < live_at.len() {
            // Only `fitted` fit: keep those, drop the rest (the caller asked
            // for at most a batch and learns what fitted).
            let keep = live_at[fitted - 1] + 1;
            sequences.truncate(keep);
            audios.truncate(keep);
            done.truncate(keep);
        }
        for (&i, chunk) in live_at.iter().zip(chunks) {
            audios[i].extend_from_slice(&chunk.audio);
            done[i] = chunk.done;
        }
    }
    let fitted = audios.len();
    Ok((audios, fitted))
}

#[cfg(test)]
mod tests;

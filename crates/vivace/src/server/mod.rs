//! The speech service: an OpenAI-compatible HTTP API over the runtime.
//!
//! `vivace serve` loads the voices, then [`serve`] binds, answers at once
//! (`/health`), warms the voices up in the background (`/ready` says when),
//! and runs until its shutdown future resolves (SIGTERM/SIGINT in the CLI):
//! then it stops accepting, lets in-flight requests finish within
//! [`ServerConfig::shutdown_grace`], and stops the workers.
//!
//! Layout: [`api`] the endpoints, [`formats`] the audio encodings,
//! [`cloned_voices`] the uploaded voices on disk, [`error`]
//! OpenAI-shaped errors; authentication and request counting are the two
//! middleware functions here.

pub mod api;
pub mod cloned_voices;
pub mod error;
pub mod formats;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use self::error::ApiError;
use crate::family::Voice;
use crate::metrics::{Metrics, RequestLabels};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::speaker::SpeakerEncoder;

/// What the service runs with (the CLI's flags, checked).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// When set, every endpoint but `/health` needs `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Origins allowed to call from browsers; empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// Longest `input`, in characters (OpenAI's limit is 4096).
    pub max_input_chars: usize,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest upload (embeddings, voice recordings), in bytes.
    pub max_upload_bytes: usize,
    /// Voice names clients send mapped to served voices (`alloy` to
    /// `en_US-joe-medium`), beyond the default of every OpenAI name to the
    /// first served voice.
    pub voice_aliases: Vec<(String, String)>,
    /// Where cloned voices are kept.
    pub cloned_voices_dir: std::path::PathBuf,
    /// Most bytes the cloned voices may take on disk.
    pub max_cloned_voice_bytes: u64,
    /// How long a request may take, queueing included.
    pub request_timeout: Duration,
    /// How long in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Seconds of silence between sentences.
    pub sentence_silence: f32,
    /// `Retry-After` of a 503 when the queue is full, in seconds.
    pub retry_after_seconds: u32,
    /// Whether to warm the voices up before `/ready` says so.
    pub warmup: bool,
    /// Workers, batch size and queue bound.
    pub runtime: RuntimeConfig,
}

/// A voice the service speaks with.
pub struct ServedVoice {
    /// Its name (the one requests use), language, rate and speakers.
    pub info: crate::voice_store::VoiceInfo,
    /// The loaded voice.
    pub voice: Arc<dyn Voice>,
    /// Per-sentence post-processing (Piper's normalization and volume).
    pub post: vivace_frontend::audio::PostProcess,
}

/// What every handler shares.
pub struct App {
    /// The configuration.
    pub config: ServerConfig,
    /// The voices, in the order the runtime indexes them.
    pub voices: Vec<ServedVoice>,
    /// The queue and its workers.
    pub runtime: Runtime,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The voice encoder, unless embeddings are off.
    pub encoder: Option<Arc<SpeakerEncoder>>,
    /// One embedding at a time: the encoder already uses every core.
    pub encoder_slot: Arc<tokio::sync::Semaphore>,
    /// The voices cloned from uploads.
    pub cloned: cloned_voices::ClonedVoices,
    /// Alias names (OpenAI's voices and configured ones) to the index of
    /// the served voice they speak with.
    pub aliases: Vec<(String, usize)>,
    /// Set once the voices are warmed up.
    pub ready: AtomicBool,
    /// Why warm-up failed, if it did (`/ready` stays 503 and says so).
    pub warmup_error: std::sync::OnceLock<String>,
    /// Set at the shutdown signal: warm-up stops early.
    pub stopping: AtomicBool,
    /// SHA-256 of the API key, compared in constant time.
    key_digest: Option<[u8; 32]>,
}

impl App {
    /// The index of the voice `name` (the first voice when absent); an
    /// unknown name is a 400 that lists the served voices. Names are only
    /// looked up here, never used as paths.
    pub fn voice_index(&self, name: Option<&str>) -> Result<usize, ApiError> {
        let voices = &self.voices;
        let Some(name) = name else {
            return Ok(0);
        };
        voices
            .iter()
            .position(|v| v.info.name == name)
            .ok_or_else(|| {
                let served: Vec<&str> = voices.iter().map(|v| v.info.name.as_str()).collect();
                ApiError::bad_request(
                    "voice_not_found",
                    format!(
                        "voice {name:?} is not served here: use one of {} (GET /v1/voices lists them)",
                        served.join(", ")
                    ),
                )
            })
    }
}

/// OpenAI's built-in voice names: each is an alias of the first served
/// voice unless `--voice-alias` says otherwise, so clients that send them
/// (the SDKs' examples do) are answered.
pub const OPENAI_VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
    "marin", "cedar",
];

/// Every alias with the index of its served voice: OpenAI's names to the
/// first voice, then `configured` (`(alias, served voice)`) over them. A
/// served voice's own name is never an alias.
fn aliases(
    voices: &[ServedVoice],
    configured: &[(String, String)],
) -> Result<Vec<(String, usize)>, ServerError> {
    let served = |name: &str| voices.iter().position(|v| v.info.name == name);
    let mut aliases: Vec<(String, usize)> = OPENAI_VOICES
        .iter()
        .filter(|n| served(n).is_none())
        .map(|n| (n.to_string(), 0))
        .collect();
    for (alias, target) in configured {
        let index = served(target).ok_or_else(|| ServerError::AliasTarget {
            alias: alias.clone(),
            target: target.clone(),
        })?;
        if served(alias).is_some() {
            return Err(ServerError::AliasShadows(alias.clone()));
        }
        aliases.retain(|(a, _)| a != alias);
        aliases.push((alias.clone(), index));
    }
    Ok(aliases)
}

/// What can stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No voice to serve.
    #[error("no voice to serve: give at least one --voice")]
    NoVoices,
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr} (another program may use the port: pick another with --port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An alias names a voice that is not served.
    #[error("--voice-alias {alias}={target}: no served voice is called {target:?} (give it with --voice)")]
    AliasTarget {
        /// The alias.
        alias: String,
        /// The voice it names.
        target: String,
    },
    /// An alias would hide a served voice.
    #[error("--voice-alias {0}=...: {0:?} is a served voice's own name; pick another alias")]
    AliasShadows(String),
    /// The cloned voices' directory could not be opened.
    #[error("cannot open the cloned voices (--cloned-voices)")]
    ClonedVoices(#[from] cloned_voices::ClonedVoiceError),
    /// Threads could not be started, or the server failed.
    #[error("the server failed")]
    Io(#[from] std::io::Error),
}

/// Builds the routes, with authentication, request counting, body limits
/// and CORS as configured.
pub fn router(app: Arc<App>) -> Router {
    let config = &app.config;
    let mut router = Router::new()
        .route(
            "/v1/audio/speech",
            limited(post(api::speech), config.max_body_bytes),
        )
        .route(
            "/v1/audio/embeddings",
            limited(post(api::embeddings), config.max_upload_bytes),
        )
        .route(
            "/v1/audio/voices",
            limited(
                get(api::list_voices).post(api::create_voice),
                config.max_upload_bytes,
            ),
        )
        .route("/v1/audio/voices/{id}", delete(api::delete_voice))
        .route("/v1/models", get(api::models))
        .route("/v1/voices", get(api::voices))
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            count_requests,
        ));
    if !config.cors_origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(config.cors_origins.clone()))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                // Client libraries add their own headers (OpenAI's SDK: x-stainless-*).
                .allow_headers(AllowHeaders::mirror_request())
                .expose_headers([
                    header::RETRY_AFTER,
                    header::HeaderName::from_static("x-sample-rate"),
                    header::HeaderName::from_static("x-ignored-fields"),
                ]),
        );
    }
    router.with_state(app)
}

/// Requires the API key, when one is set, on every path but `/health`.
async fn authenticate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.key_digest else {
        return next.run(request).await;
    };
    // CORS preflights never get here: the CORS layer, outermost, answers them.
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 9110), the key is not.
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| digest(key.trim()))
        });
    // Digests have one length, so the comparison takes the same time
    // whatever the key given.
    match given {
        Some(given) if bool::from(given.ct_eq(expected)) => next.run(request).await,
        _ => axum::response::IntoResponse::into_response(ApiError::unauthorized()),
    }
}

/// `route` with its bodies limited to `limit` bytes: refused from a
/// declared length over it, cut off at it otherwise.
fn limited(route: MethodRouter<Arc<App>>, limit: usize) -> MethodRouter<Arc<App>> {
    route
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, refuse_oversized))
}

/// Answers 413 at once when the declared `Content-Length` is over `limit`,
/// without reading the body (bodies without one are cut off at the limit
/// while read: `DefaultBodyLimit`).
async fn refuse_oversized(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            axum::response::IntoResponse::into_response(ApiError::invalid(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body has {length} bytes, more than this endpoint's limit of {limit}: send less per request"
                ),
            ))
        }
        _ => next.run(request).await,
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Counts every answer by route and status.
async fn count_requests(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Serves `voices` (and `encoder`, for embeddings) on `config.addr` until
/// `shutdown` resolves; then finishes in-flight requests within the grace
/// period and stops. `on_listening` gets the bound address (port 0 resolved).
pub async fn serve(
    config: ServerConfig,
    voices: Vec<ServedVoice>,
    encoder: Option<SpeakerEncoder>,
    device: vivace_perf::DeviceKind,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    if voices.is_empty() {
        return Err(ServerError::NoVoices);
    }
    let mut devices = vec![vivace_perf::DeviceKind::Cpu];
    if device != vivace_perf::DeviceKind::Cpu {
        devices.push(device);
    }
    let aliases = aliases(&voices, &config.voice_aliases)?;
    let cloned = cloned_voices::ClonedVoices::open(
        &config.cloned_voices_dir,
        config.max_cloned_voice_bytes,
    )?;
    let metrics = Arc::new(Metrics::new(devices));
    let runtime = Runtime::start(
        voices.iter().map(|v| Arc::clone(&v.voice)).collect(),
        config.runtime,
        Arc::clone(&metrics),
    )?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        key_digest: config.api_key.as_deref().map(|k| digest(k.trim())),
        metrics,
        voices,
        runtime,
        cloned,
        aliases,
        encoder: encoder.map(Arc::new),
        encoder_slot: Arc::new(tokio::sync::Semaphore::new(1)),
        ready: AtomicBool::new(false),
        warmup_error: std::sync::OnceLock::new(),
        stopping: AtomicBool::new(false),
        config,
    });
    on_listening(addr);

    let warm = Arc::clone(&app);
    tokio::task::spawn_blocking(move || {
        let warmed = match warm.config.warmup {
            true => warm_up(&warm),
            false => Ok(()),
        };
        match warmed {
            Ok(()) => {
                warm.ready.store(true, Ordering::Release);
                tracing::info!("ready");
            }
            Err(e) => {
                tracing::error!("not ready: {e}");
                let _ = warm.warmup_error.set(e);
            }
        }
    });

    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let signalled_app = Arc::clone(&app);
    let on_signal = async move {
        shutdown.await;
        signalled_app.stopping.store(true, Ordering::Release);
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = signalled_tx.send(());
    };
    let server = axum::serve(listener, router(Arc::clone(&app)))
        .with_graceful_shutdown(on_signal)
        .into_future();
    let grace = app.config.shutdown_grace;
    let bounded = async move {
        // The grace period starts at the signal, not at start-up.
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result?,
        _ = bounded => tracing::warn!(
            "in-flight requests did not finish within {} s of the shutdown signal: stopping anyway",
            grace.as_secs_f64()
        ),
    }
    // Every answered request has left the queue: the workers find it empty
    // (or, past the grace period, are abandoned to the process exit).
    let workers = Arc::clone(&app);
    let stopped = tokio::time::timeout(
        grace,
        tokio::task::spawn_blocking(move || workers.runtime.shutdown()),
    )
    .await;
    if stopped.is_err() {
        tracing::warn!("the synthesis workers did not stop in time");
    }
    Ok(())
}

/// Runs every voice on a short text until latency settles (the plan's
/// warm-up), so the first client does not pay for first-call costs; stops
/// early at shutdown. A voice that fails here would fail every request.
fn warm_up(app: &App) -> Result<(), String> {
    for voice in &app.voices {
        if app.stopping.load(Ordering::Acquire) {
            return Ok(());
        }
        let name = &voice.info.name;
        let failed = |e: crate::synth::SynthError| format!("warm-up of voice {name} failed: {e}");
        let sentences = voice
            .voice
            .sentences("This is a warm-up sentence for the voice.")
            .map_err(failed)?;
        let params = voice
            .voice
            .params(&crate::family::Request::default())
            .map_err(failed)?;
        let report = vivace_perf::warmup::warmup(
            || crate::runtime::render(voice.voice.as_ref(), &sentences, &params, 1).map(|_| ()),
            vivace_perf::warmup::WarmupOptions::default(),
        )
        .map_err(|e| format!("warm-up of voice {name} failed: {e}"))?;
        tracing::info!(
            "voice {name} warm: cold {:.3} s, warm {:.3} s after {} runs",
            report.cold.as_secs_f64(),
            report.warm.as_secs_f64(),
            report.runs
        );
    }
    Ok(())
}

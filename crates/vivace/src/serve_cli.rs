//! `vivace serve`: flags, voice loading and signals around
//! [`vivace::server::serve`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::http::HeaderValue;
use vivace::bench::{decide_batch, Workload};
use vivace::runtime::RuntimeConfig;
use vivace::server::ServedVoice;
use vivace::server::ServerConfig;
use vivace::speaker::SpeakerEncoder;
use vivace::synth::{LoadOptions, Synthesizer};
use vivace::tone_color::{load_for_cloning, locate_converter};
use vivace::voice_store::{VoiceStore, RESEMBLYZER_ENCODER};
use vivace_frontend::audio::PostProcess;

use crate::DeviceArg;

/// Longest timeout or grace period accepted, in seconds (a day).
const MAX_SECONDS: f64 = 86_400.0;
/// Largest `--max-input-chars`.
const MAX_INPUT_CHARS: usize = 1_000_000;
/// Largest `--max-upload-mib`.
const MAX_UPLOAD_MIB: usize = 1024;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// OpenVoice v2's tone-colour converter (a folder with `checkpoint.pth`
    /// and `config.json`), with which Piper, MMS and Kokoro voices clone uploaded
    /// voices (`POST /v1/audio/voices`). Default: the one `vivace download
    /// openvoice` installed, when there is one.
    #[arg(long, env = "VIVACE_OPENVOICE")]
    converter: Option<PathBuf>,
    /// Embed uploaded references whole instead of their speech cut into
    /// ~10 s pieces by Silero VAD (which needs more than 5 s of speech).
    #[arg(long = "no-vad")]
    no_vad: bool,
    /// Address to listen on. Loopback by default: binding to another
    /// address (0.0.0.0 for every interface) exposes the service.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Voices to serve: installed names or paths to NAME.onnx / MMS
    /// checkpoint folders; repeat for several (the first is the default).
    /// Default: the default voice.
    #[arg(
        long = "voice",
        short = 'm',
        env = "VIVACE_VOICE",
        value_delimiter = ','
    )]
    voices: Vec<String>,
    #[command(flatten)]
    device: DeviceArg,
    /// Require `Authorization: Bearer KEY` on every endpoint but /health.
    #[arg(long, env = "VIVACE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Allow browsers from this origin (CORS); repeat for several. Off by default.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Longest `input` accepted, in characters.
    #[arg(long, default_value_t = 4096)]
    max_input_chars: usize,
    /// Another name for a served voice, as NAME=VOICE (`alloy=en_US-joe-medium`);
    /// repeat for several. OpenAI's voice names (alloy, echo, nova, ...)
    /// speak with the first served voice unless aliased here.
    #[arg(long = "voice-alias", env = "VIVACE_VOICE_ALIAS", value_delimiter = ',', value_parser = parse_alias)]
    voice_aliases: Vec<(String, String)>,
    /// Largest upload (embeddings, voice recordings), in MiB.
    #[arg(long, default_value_t = 25)]
    max_upload_mib: usize,
    /// Where voices cloned through POST /v1/audio/voices are kept; default:
    /// `cloned-voices` in the voice store.
    #[arg(long, env = "VIVACE_CLONED_VOICES")]
    cloned_voices: Option<PathBuf>,
    /// Most disk space the cloned voices may take, in MiB (uploads past it get 507).
    #[arg(long, default_value_t = 1024)]
    max_cloned_voices_mib: u64,
    /// Speech requests in progress (queued, synthesizing or streaming) before new ones get 503.
    #[arg(long, default_value_t = 64)]
    queue_size: usize,
    /// Seconds a request may take, queueing included (504 after).
    #[arg(long, default_value_t = 60.0)]
    request_timeout: f64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 30.0)]
    shutdown_grace: f64,
    /// Milliseconds a worker waits for more sentences to fill a batch.
    #[arg(long, default_value_t = 5)]
    batch_wait_ms: u64,
    /// Sentences per model call; default: the performance layer's (measured
    /// on accelerators, 1 on the CPU).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Synthesis workers; default: the plan's sentence streams.
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds of silence between sentences.
    #[arg(long, default_value_t = 0.0)]
    sentence_silence: f32,
    /// Serve no speaker embeddings (and fetch no encoder weights).
    #[arg(long)]
    no_embeddings: bool,
    /// Voice-encoder weights (resemblyzer's pretrained.pt); fetched with pip when absent.
    #[arg(long, env = "VIVACE_VOICE_ENCODER")]
    encoder: Option<PathBuf>,
}

/// `NAME=VOICE`, both non-empty.
fn parse_alias(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((alias, voice)) if !alias.trim().is_empty() && !voice.trim().is_empty() => {
            Ok((alias.trim().to_string(), voice.trim().to_string()))
        }
        _ => Err(format!(
            "{s:?} is not NAME=VOICE (for example alloy=en_US-joe-medium)"
        )),
    }
}

impl ServeArgs {
    /// Checks the numbers before anything loads.
    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("--request-timeout", self.request_timeout),
            ("--shutdown-grace", self.shutdown_grace),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_SECONDS) {
                bail!("{name} must be a number of seconds above 0 and at most {MAX_SECONDS} (a day), got {v}");
            }
        }
        if !(self.sentence_silence.is_finite() && (0.0..=10.0).contains(&self.sentence_silence)) {
            bail!("--sentence-silence must be between 0 and 10 seconds");
        }
        if self.max_input_chars > MAX_INPUT_CHARS {
            bail!("--max-input-chars must be at most {MAX_INPUT_CHARS}: split longer texts into several requests");
        }
        if self.max_upload_mib > MAX_UPLOAD_MIB {
            bail!("--max-upload-mib must be at most {MAX_UPLOAD_MIB}");
        }
        if self.batch_wait_ms > 10_000 {
            bail!("--batch-wait-ms must be at most 10000 (a few milliseconds is the point)");
        }
        if self.cors_origins.iter().any(|o| o.trim() == "*") {
            bail!("--cors-origin '*' would let every web page call this service: name the origins, e.g. --cors-origin https://app.example.com");
        }
        for (name, v) in [
            ("--queue-size", self.queue_size),
            ("--max-input-chars", self.max_input_chars),
            ("--batch-size", self.batch_size.unwrap_or(1)),
            ("--workers", self.workers.unwrap_or(1)),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            bail!("VIVACE_API_KEY / --api-key is set but empty: give a key or unset it");
        }
        Ok(())
    }
}

/// Loads the voices and the encoder, then serves until SIGTERM or SIGINT.
pub fn serve(args: &ServeArgs) -> Result<()> {
    args.check()?;
    let cors_origins = args
        .cors_origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o)
                .with_context(|| format!("--cors-origin {o:?} is not a valid header value"))
        })
        .collect::<Result<Vec<_>>>()?;
    let optimizer = args.device.optimizer()?;
    let store = VoiceStore::from_env()?;
    let names: Vec<Option<&str>> = match args.voices.is_empty() {
        true => vec![None],
        false => args.voices.iter().map(|v| Some(v.as_str())).collect(),
    };
    let tone_color = match locate_converter(args.converter.as_deref(), &store) {
        Ok(dir) => {
            let tone_color = load_for_cloning(&dir, &optimizer.device.device, &store, !args.no_vad)
                .with_context(|| format!("cannot load the converter in {}", dir.display()))?;
            tracing::info!(converter = %dir.display(), "Piper, MMS and Kokoro voices clone with OpenVoice's tone-colour converter");
            Some(std::sync::Arc::new(tone_color))
        }
        // Asked for by name, it must be there; otherwise cloning is off.
        Err(e) if args.converter.is_some() => return Err(e.into()),
        Err(_) => None,
    };
    let espeak_data = store.espeak_data_dir();
    let options = LoadOptions {
        tone_color,
        ..LoadOptions::new(&espeak_data)
    };
    let mut voices: Vec<ServedVoice> = Vec::new();
    let mut device = optimizer.device.kind;
    let mut batch = args.batch_size;
    for name in names {
        let path = store.resolve(name)?;
        let (synth, kind) =
            Synthesizer::load_planned(&path, &optimizer, args.device.is_explicit(), &options)
                .with_context(|| format!("cannot load voice {}", path.display()))?;
        let served_name = match name {
            Some(n) if !n.contains(['/', '\\']) && !n.ends_with(".onnx") => n.to_string(),
            _ => voice_name(&path),
        };
        if voices.iter().any(|v| v.info.name == served_name) {
            bail!("voice {served_name:?} is given twice");
        }
        // VITS voices say more in their config files (format, language);
        // any other family is described by what it loaded.
        let info = vivace::voice_store::describe(&served_name, &path).unwrap_or_else(|_| {
            vivace::voice_store::VoiceInfo::from_capabilities(
                &served_name,
                &path,
                synth.voice().capabilities(),
            )
        });
        if batch.is_none() {
            let decision = decide_batch(
                &synth,
                &optimizer,
                &served_name,
                Workload::Medium.text(),
                &store.batch_cache_path(),
            )?;
            tracing::info!("batch {} ({})", decision.batch, decision.source);
            batch = Some(decision.batch);
        }
        device = kind;
        eprintln!(
            "vivace: serving voice {served_name} ({} Hz) on {kind}",
            info.sample_rate
        );
        voices.push(ServedVoice {
            info,
            voice: Arc::clone(synth.voice()),
            post: PostProcess::default(),
        });
    }
    let encoder = match args.no_embeddings {
        true => None,
        false => {
            let weights = match &args.encoder {
                Some(path) => path.clone(),
                None => store.ensure_weights(&RESEMBLYZER_ENCODER).context(
                    "cannot fetch the voice encoder's weights (or pass --no-embeddings)",
                )?,
            };
            let (mut encoder, _) =
                SpeakerEncoder::load_planned(&weights, &optimizer, args.device.is_explicit())?;
            encoder.plan_batch(&optimizer, &store.batch_cache_path())?;
            Some(encoder)
        }
    };
    let workers = args.workers.unwrap_or(optimizer.plan.sentence_threads);
    let config = ServerConfig {
        addr: SocketAddr::new(args.host, args.port),
        api_key: args.api_key.clone(),
        cors_origins,
        max_input_chars: args.max_input_chars,
        // JSON escapes can take 6 bytes per character (\uXXXX), plus the other fields.
        max_body_bytes: args.max_input_chars * 6 + 64 * 1024,
        max_upload_bytes: args.max_upload_mib << 20,
        voice_aliases: args.voice_aliases.clone(),
        cloned_voices_dir: args
            .cloned_voices
            .clone()
            .unwrap_or_else(|| store.cloned_voices_dir()),
        max_cloned_voice_bytes: args.max_cloned_voices_mib.saturating_mul(1 << 20),
        request_timeout: Duration::from_secs_f64(args.request_timeout),
        shutdown_grace: Duration::from_secs_f64(args.shutdown_grace),
        sentence_silence: args.sentence_silence,
        retry_after_seconds: 1,
        warmup: optimizer.plan.warmup,
        runtime: RuntimeConfig {
            workers,
            max_batch: batch.unwrap_or(1),
            max_wait: Duration::from_millis(args.batch_wait_ms),
            stream_threads: optimizer.plan.stream_threads,
            max_pending_requests: args.queue_size,
        },
    };
    if !args.host.is_loopback() {
        eprintln!(
            "vivace: warning: listening on {} exposes the service beyond this machine{}",
            args.host,
            if config.api_key.is_none() {
                " without an API key (set VIVACE_API_KEY)"
            } else {
                ""
            }
        );
    }
    let scheduler = config.runtime;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vivace-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let grace = config.shutdown_grace;
    runtime.block_on(async move {
        // Listen for the signals before saying we listen: a SIGTERM right
        // after start-up must be a graceful stop, not a kill.
        let shutdown = shutdown_signal()?;
        vivace::server::serve(config, voices, encoder, device, shutdown, |addr| {
            // Scripts and tests read this line for the port.
            println!("vivace: listening on http://{addr}");
            eprintln!(
                "vivace: {} worker(s), batch up to {}, queue {} requests",
                scheduler.workers, scheduler.max_batch, scheduler.max_pending_requests
            );
        })
        .await
        .map_err(anyhow::Error::from)
    })?;
    // Blocking work still running (an embedding, a warm-up run) gets the
    // grace period too, then is abandoned to the exit.
    runtime.shutdown_timeout(grace);
    eprintln!("vivace: stopped");
    Ok(())
}

/// A served voice's name: the file stem of NAME.onnx, or the checkpoint folder.
fn voice_name(path: &std::path::Path) -> String {
    path.file_stem()
        .or_else(|| path.file_name())
        .map_or_else(|| "voice".into(), |s| s.to_string_lossy().into_owned())
}

/// A future that resolves at SIGTERM or SIGINT (Ctrl-C); the handlers are
/// installed now, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        eprintln!("vivace: shutting down: finishing in-flight requests");
    })
}

/// A future that resolves at Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("vivace: shutting down: finishing in-flight requests");
        } else {
            std::future::pending::<()>().await;
        }
    })
}

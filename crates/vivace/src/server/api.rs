//! The endpoints: OpenAI's `POST /v1/audio/speech`, the voice list, speaker
//! embeddings, health, readiness and metrics.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant as TokioInstant};
use vivace_frontend::speaker_audio;

use super::error::ApiError;
use super::formats::{flac, pcm_s16le, wav_stream_header, ResponseFormat};
use super::scheduler::InOrder;
use super::App;
use crate::speaker::SpeakerError;
use crate::synth::SynthError;

/// Model names `model` accepts: Vivace's own, and OpenAI's TTS model names so
/// existing clients work unchanged (all mean "the voice you name").
pub const MODELS: [&str; 4] = ["vivace", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// The speed range OpenAI's API accepts.
const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.25..=4.0;

/// The body of `POST /v1/audio/speech` (OpenAI's fields, plus `speaker`).
#[derive(Debug, Deserialize)]
pub struct SpeechRequest {
    /// One of [`MODELS`]; default `vivace`.
    pub model: Option<String>,
    /// The text to speak.
    pub input: String,
    /// A served voice's name; default: the first voice the server loaded.
    pub voice: Option<String>,
    /// `wav` (default), `pcm` or `flac`.
    pub response_format: Option<String>,
    /// Speaking rate, 0.25 to 4 (divides the voice's length scale).
    pub speed: Option<f64>,
    /// Vivace extension: speaker name or index of a multi-speaker voice.
    pub speaker: Option<String>,
}

/// `POST /v1/audio/speech`: checks the request, splits it into sentences,
/// queues them and streams the audio back in order.
pub async fn speech(
    State(app): State<Arc<App>>,
    body: Result<Json<SpeechRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let accepted = Instant::now();
    let deadline = TokioInstant::now() + app.config.request_timeout;
    let Json(request) = body?;
    let model = request.model.as_deref().unwrap_or("vivace");
    if !MODELS.contains(&model) {
        return Err(ApiError::invalid(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "model {model:?} does not exist: use one of {}",
                MODELS.join(", ")
            ),
        ));
    }
    let index = app.voice_index(request.voice.as_deref())?;
    let format = ResponseFormat::parse(request.response_format.as_deref().unwrap_or("wav"))
        .map_err(|m| ApiError::bad_request("unsupported_format", m))?;
    let chars = request.input.chars().count();
    if request.input.trim().is_empty() {
        return Err(ApiError::bad_request(
            "empty_input",
            "`input` is empty: give the text to speak",
        ));
    }
    if chars > app.config.max_input_chars {
        return Err(ApiError::bad_request(
            "input_too_long",
            format!(
                "`input` has {chars} characters, more than this server's limit of {}: split the text into several requests",
                app.config.max_input_chars
            ),
        ));
    }
    let speed = request.speed.unwrap_or(1.0);
    if !(speed.is_finite() && SPEED_RANGE.contains(&speed)) {
        return Err(ApiError::bad_request(
            "invalid_speed",
            format!("`speed` must be between 0.25 and 4.0, got {speed}"),
        ));
    }
    let voice = &app.scheduler.voices()[index];
    let mut params = voice.synth.voice().default_params();
    params.length_scale /= speed;
    if let Some(speaker) = &request.speaker {
        params.speaker = Some(
            voice
                .synth
                .voice()
                .speaker(speaker)
                .map_err(|e| ApiError::bad_request("invalid_speaker", e.to_string()))?,
        );
    }
    let sample_rate = voice.synth.sample_rate();

    // espeak-ng runs under one global lock: keep it off the async threads.
    let text = request.input;
    let phonemized = {
        let app = Arc::clone(&app);
        tokio::task::spawn_blocking(move || app.scheduler.voices()[index].synth.sentences(&text))
    };
    let sentences = phonemized
        .await
        .map_err(|e| ApiError::internal(format!("the phonemizer stopped: {e}")))?
        .map_err(input_error)?;
    if sentences.is_empty() {
        return Err(ApiError::bad_request(
            "empty_input",
            "`input` has nothing the voice can say (no words after phonemization)",
        ));
    }
    let ids = sentences.into_iter().map(|s| s.ids).collect();
    let mut order = app
        .scheduler
        .submit(index, ids, params)
        .map_err(|full| ApiError::overloaded(full.to_string(), app.config.retry_after_seconds))?;

    let first = match timeout_at(deadline, order.next()).await {
        Err(_) => return Err(ApiError::timeout(app.config.request_timeout.as_secs_f64())),
        Ok(None) => return Err(ApiError::internal("no audio was produced")),
        Ok(Some(Err(e))) => return Err(synthesis_error(&e)),
        Ok(Some(Ok(audio))) => audio,
    };
    app.metrics
        .first_audio_seconds
        .observe(accepted.elapsed().as_secs_f64());
    let silence =
        vec![
            0f32;
            vivace_frontend::audio::silence_samples(sample_rate, app.config.sentence_silence)
        ];

    let mut response = if format.streams() {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let mut head = Vec::new();
        if format == ResponseFormat::Wav {
            head.extend_from_slice(&wav_stream_header(sample_rate));
        }
        head.extend_from_slice(&pcm_s16le(&first));
        // The channel is empty and holds 8: the first send cannot wait.
        let _ = tx.try_send(Ok(Bytes::from(head)));
        tokio::spawn(stream_rest(
            order,
            tx,
            silence,
            deadline,
            Arc::clone(&app),
            accepted,
        ));
        Response::new(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
    } else {
        let mut audio = first;
        loop {
            match timeout_at(deadline, order.next()).await {
                Err(_) => return Err(ApiError::timeout(app.config.request_timeout.as_secs_f64())),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(synthesis_error(&e)),
                Ok(Some(Ok(more))) => {
                    audio.extend_from_slice(&silence);
                    audio.extend_from_slice(&more);
                }
            }
        }
        drop(order);
        let encoded = tokio::task::spawn_blocking(move || flac(&audio, sample_rate))
            .await
            .map_err(|e| ApiError::internal(format!("the FLAC encoder stopped: {e}")))?
            .map_err(ApiError::internal)?;
        app.metrics
            .request_seconds
            .observe(accepted.elapsed().as_secs_f64());
        Response::new(Body::from(encoded))
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert("x-sample-rate", HeaderValue::from(sample_rate));
    Ok(response)
}

/// Sends the sentences after the first as they finish, until the last, a
/// failure, the deadline, or the client going away (which cancels the rest).
async fn stream_rest(
    mut order: InOrder,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    silence: Vec<f32>,
    deadline: TokioInstant,
    app: Arc<App>,
    accepted: Instant,
) {
    loop {
        let next = tokio::select! {
            _ = tx.closed() => {
                tracing::debug!("client went away: cancelling its sentences");
                order.cancel();
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!("request timed out while streaming");
                order.cancel();
                // An error ends the chunked body without its terminator:
                // the client sees an incomplete response, not a short one.
                let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))).await;
                return;
            }
            next = order.next() => next,
        };
        let audio = match next {
            None => break,
            Some(Ok(audio)) => audio,
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(std::io::Error::other(format!("synthesis failed: {e}"))))
                    .await;
                return;
            }
        };
        let mut chunk = pcm_s16le(&silence).to_vec();
        chunk.extend_from_slice(&pcm_s16le(&audio));
        if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
            order.cancel();
            return;
        }
    }
    app.metrics
        .request_seconds
        .observe(accepted.elapsed().as_secs_f64());
}

/// A front-end refusal of the text (400) or a failure of ours (500).
fn input_error(e: SynthError) -> ApiError {
    match e {
        SynthError::EmptyText => {
            ApiError::bad_request("empty_input", "`input` is empty: give the text to speak")
        }
        SynthError::Model(vivace_models::Error::InvalidInput(m)) => {
            ApiError::bad_request("invalid_input", m)
        }
        SynthError::Frontend(e) => ApiError::bad_request("invalid_input", e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// A synthesis failure after the request was accepted.
fn synthesis_error(e: &SynthError) -> ApiError {
    match e {
        SynthError::OutOfMemory => ApiError::overloaded(e.to_string(), 1),
        other => ApiError::internal(format!("synthesis failed: {other}")),
    }
}

/// `GET /v1/voices`: the voices this server speaks with.
pub async fn voices(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let data: Vec<serde_json::Value> = app
        .scheduler
        .voices()
        .iter()
        .map(|v| {
            serde_json::json!({
                "id": v.info.name,
                "object": "voice",
                "format": v.info.format,
                "language": v.info.language,
                "sample_rate": v.info.sample_rate,
                "speakers": v.info.speakers,
            })
        })
        .collect();
    Json(serde_json::json!({ "object": "list", "data": data }))
}

/// `POST /v1/audio/embeddings`: the speaker embedding of an uploaded WAV
/// (multipart field `file`), resemblyzer's 256 values of unit length.
pub async fn embeddings(
    State(app): State<Arc<App>>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(encoder) = app.encoder.clone() else {
        return Err(ApiError::invalid(
            StatusCode::NOT_FOUND,
            "embeddings_disabled",
            "speaker embeddings are off on this server: start it without --no-embeddings",
        ));
    };
    let mut form = form?;
    let mut upload = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::invalid(e.status(), "invalid_upload", e.body_text()))?
    {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("upload.wav").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::invalid(e.status(), "invalid_upload", e.body_text()))?;
            upload = Some((name, bytes));
        }
    }
    let Some((name, bytes)) = upload else {
        return Err(ApiError::bad_request(
            "missing_file",
            "no `file` field: upload the WAV recording as multipart field `file`",
        ));
    };
    let _slot = app
        .encoder_slot
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the encoder is shutting down"))?;
    let embedding = tokio::task::spawn_blocking(move || {
        let what = Path::new(&name);
        let recording = speaker_audio::read_wav_from(Cursor::new(bytes), what)?;
        let samples = speaker_audio::preprocess_recording(recording, what)?;
        encoder.embed_preprocessed(samples, what)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the encoder stopped: {e}")))?
    .map_err(|e| match e {
        SpeakerError::Frontend(_) | SpeakerError::TooShort { .. } => {
            ApiError::bad_request("invalid_audio", e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    })?;
    Ok(Json(serde_json::json!({
        "object": "list",
        "model": "resemblyzer",
        "data": [{
            "object": "embedding",
            "index": 0,
            "embedding": embedding.embedding,
            "windows": embedding.windows,
            "speech_seconds": embedding.speech_seconds,
        }],
    })))
}

/// `GET /health`: the process is up (no authentication).
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: voices loaded and warmed up (503 until then).
pub async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "warming up" })),
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let body = app.metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Any other path: a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::invalid(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint: see GET /v1/voices, POST /v1/audio/speech, POST /v1/audio/embeddings, /health, /ready, /metrics",
    )
}

/// A known path with the wrong method: a JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::invalid(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that HTTP method",
    )
}

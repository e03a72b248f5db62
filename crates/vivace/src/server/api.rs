//! The endpoints: OpenAI's `POST /v1/audio/speech`, its voices (listed,
//! cloned from uploads, deleted) and models, Vivace's voice list, speaker
//! embeddings, health, readiness and metrics.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
use tokio_stream::StreamExt;
use vivace_frontend::speaker_audio;

use super::cloned_voices::{ClonedVoiceError, ClonedVoiceInfo};
use super::error::ApiError;
use super::formats::{at_rate, flac, ResponseFormat, StreamEncoder};
use super::App;
use crate::family::{ClonedSpeaker, Request, SpeakerRef};
use crate::runtime::{Delivery, InOrder};
use crate::speaker::SpeakerError;
use crate::synth::SynthError;

/// Model names `model` accepts: Vivace's own, and OpenAI's TTS model names so
/// existing clients work unchanged (all mean "the voice you name").
pub const MODELS: [&str; 4] = ["vivace", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// Longest recording `POST /v1/audio/embeddings` takes, in seconds.
const MAX_UPLOAD_SECONDS: f64 = 600.0;

/// The speed range OpenAI's API accepts.
const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.25..=4.0;

/// The body of `POST /v1/audio/speech` (OpenAI's fields, plus `speaker`).
#[derive(Debug, Deserialize)]
pub struct SpeechRequest {
    /// One of [`MODELS`]; default `vivace`.
    pub model: Option<String>,
    /// The text to speak.
    pub input: String,
    /// A served voice's name, or a cloned voice's id or name, as a string
    /// or as `{"id": ...}`; default: the first voice the server loaded.
    pub voice: Option<VoiceField>,
    /// `mp3` (default, as OpenAI's), `opus`, `wav`, `pcm` or `flac`.
    pub response_format: Option<String>,
    /// Speaking rate, 0.25 to 4 (divides the voice's length scale).
    pub speed: Option<f64>,
    /// Vivace extension: speaker name or index of a multi-speaker voice.
    pub speaker: Option<String>,
    /// Vivace extension: seed of the voice's noise (same seed and input,
    /// same audio, whatever else is batched with it).
    pub seed: Option<u64>,
    /// Vivace extension: the language to speak, for a voice that speaks
    /// several (Chatterbox's 23-language model; ISO 639-1).
    pub language: Option<String>,
    /// Vivace extension: the rate of `pcm` (24 kHz by default, as
    /// OpenAI's), `wav` and `flac` (the voice's by default), in Hz.
    pub sample_rate: Option<u32>,
    /// Vivace extension: Chatterbox's emotion exaggeration (0.5 neutral);
    /// voices without that control ignore it and say so in
    /// `x-ignored-fields`.
    pub exaggeration: Option<f32>,
    /// `audio` (default): the encoded audio as the body; `sse`: OpenAI's
    /// server-sent events, `speech.audio.delta` with base64 audio, then
    /// `speech.audio.done` with `usage`.
    pub stream_format: Option<String>,
    /// OpenAI's style instructions: no served family has a control for
    /// them, so they are accepted, ignored and named in the
    /// `x-ignored-fields` response header (Chatterbox's emotion has its own
    /// field, `exaggeration`).
    pub instructions: Option<String>,
}

/// The `voice` of a speech request: a name, or OpenAI's custom-voice
/// object `{"id": "voice_..."}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum VoiceField {
    /// A served voice's name, or a cloned voice's id or name.
    Name(String),
    /// A voice by id.
    Id {
        /// The id (a cloned voice's, or a served voice's name).
        id: String,
    },
}

impl VoiceField {
    fn key(&self) -> &str {
        match self {
            Self::Name(key) | Self::Id { id: key } => key,
        }
    }
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
    let (index, cloned) = resolve_voice(&app, request.voice.as_ref())?;
    if cloned.is_some() && request.speaker.is_some() {
        return Err(ApiError::bad_request(
            "invalid_speaker",
            "a cloned voice is its own speaker: drop `speaker`, or name a served voice",
        ));
    }
    let format = match request.response_format.as_deref() {
        Some(name) => ResponseFormat::parse(name)
            .map_err(|m| ApiError::bad_request("unsupported_format", m))?,
        None => ResponseFormat::DEFAULT,
    };
    let sse = match request.stream_format.as_deref() {
        None | Some("audio") => false,
        Some("sse") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "unsupported_stream_format",
                format!("stream_format {other:?} is not supported: use audio or sse"),
            ))
        }
    };
    if sse && !format.streams() {
        return Err(ApiError::bad_request(
            "unsupported_stream_format",
            format!(
                "{} is sent whole, not as events: use stream_format audio, or another format",
                format.name()
            ),
        ));
    }
    if let Some(rate) = request.sample_rate {
        format
            .check_rate(rate)
            .map_err(|m| ApiError::bad_request("invalid_sample_rate", m))?;
    }
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
    let voice = &app.voices[index];
    let mut overrides = serde_json::Map::new();
    // A voice of one language speaks it whatever `language` says.
    let languages = &voice.voice.capabilities().languages;
    if let Some(language) = request.language.as_ref().filter(|_| languages.len() > 1) {
        if !languages.iter().any(|l| l.eq_ignore_ascii_case(language)) {
            return Err(ApiError::bad_request(
                "unsupported_language",
                format!(
                    "voice {:?} does not speak {language:?}: use one of {}",
                    voice.info.name,
                    languages.join(", ")
                ),
            ));
        }
        overrides.insert("language".into(), serde_json::json!(language));
    }
    // Fields a voice has no control for: accepted, ignored, and named in
    // the reply's `x-ignored-fields`.
    let mut ignored: Vec<&str> = Vec::new();
    if let Some(exaggeration) = request.exaggeration {
        if !(exaggeration.is_finite() && (0.0..=2.0).contains(&exaggeration)) {
            return Err(ApiError::bad_request(
                "invalid_exaggeration",
                format!(
                    "`exaggeration` must be between 0 and 2 (0.5 is neutral), got {exaggeration}"
                ),
            ));
        }
        match voice.voice.capabilities().family {
            "chatterbox" => {
                overrides.insert("exaggeration".into(), serde_json::json!(exaggeration));
            }
            _ => ignored.push("exaggeration"),
        }
    }
    if request
        .instructions
        .as_deref()
        .is_some_and(|i| !i.trim().is_empty())
    {
        ignored.push("instructions");
    }
    let speaker = match &cloned {
        Some(info) => Some(SpeakerRef::Cloned(
            cloned_speaker(&app, index, info, deadline).await?,
        )),
        None => request.speaker.clone().map(SpeakerRef::Given),
    };
    let params = voice
        .voice
        .params(&Request {
            overrides,
            speed: Some(speed),
            speaker,
            seed: request.seed,
        })
        .map_err(|e| ApiError::bad_request("invalid_speaker", e.to_string()))?;
    let delivery = Delivery {
        post: voice.post,
        sentence_silence: app.config.sentence_silence,
    };
    let sample_rate = voice.voice.capabilities().sample_rate;
    let out_rate = format.output_rate(sample_rate, request.sample_rate);
    // The place in the queue comes first: an overloaded server says so
    // before spending any work on the text.
    let reservation = app
        .runtime
        .reserve()
        .map_err(|full| ApiError::overloaded(full.to_string(), app.config.retry_after_seconds))?;

    // espeak-ng runs under one global lock: keep it off the async threads.
    let text = request.input;
    let phonemized = {
        let app = Arc::clone(&app);
        tokio::task::spawn_blocking(move || app.voices[index].voice.sentences(&text))
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
    let mut order = reservation
        .submit(index, &sentences, &params, delivery)
        .map_err(|e| synthesis_error(&e))?;
    let limit = app.config.request_timeout;
    let Some(first) = next_in_time(&mut order, deadline, limit).await? else {
        return Err(ApiError::internal("no audio was produced"));
    };

    let mut response = if format.streams() {
        app.metrics
            .first_audio_seconds
            .observe(accepted.elapsed().as_secs_f64());
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let encoder =
            StreamEncoder::new(format, sample_rate, out_rate).map_err(ApiError::internal)?;
        let (encoder, head) = encode(encoder, first).await.map_err(ApiError::internal)?;
        let events = sse.then(|| Events {
            input_tokens: sentences.iter().map(|s| s.ids.len()).sum(),
        });
        // The channel is empty and holds 8: the first send cannot wait.
        let _ = tx.try_send(match &events {
            Some(events) => events.delta(&head),
            None => head,
        });
        let completed = Arc::new(AtomicBool::new(false));
        tokio::spawn(stream_rest(
            order,
            tx,
            (encoder, events),
            deadline,
            Arc::clone(&app),
            accepted,
            Arc::clone(&completed),
        ));
        // A stream that ends without `completed` ends in an error, which
        // aborts the chunked body: the client sees an incomplete response,
        // never a short one that looks whole.
        let unfinished = tokio_stream::iter(std::iter::from_fn(move || {
            (!completed.load(Ordering::Acquire)).then(|| {
                Err(std::io::Error::other(
                    "the audio stream ended early (timeout or synthesis failure)",
                ))
            })
        }))
        .take(1);
        let body = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(Ok::<Bytes, std::io::Error>)
            .chain(unfinished);
        Response::new(Body::from_stream(body))
    } else {
        let mut audio = first;
        while let Some(more) = next_in_time(&mut order, deadline, limit).await? {
            audio.extend_from_slice(&more);
        }
        drop(order);
        let encoded = tokio::task::spawn_blocking(move || {
            flac(&at_rate(&audio, sample_rate, out_rate)?, out_rate)
        })
        .await
        .map_err(|e| ApiError::internal(format!("the FLAC encoder stopped: {e}")))?
        .map_err(ApiError::internal)?;
        let elapsed = accepted.elapsed().as_secs_f64();
        // The client gets its first audio with the whole file.
        app.metrics.first_audio_seconds.observe(elapsed);
        app.metrics.request_seconds.observe(elapsed);
        Response::new(Body::from(encoded))
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match sse {
            true => "text/event-stream",
            false => format.content_type(),
        }),
    );
    headers.insert("x-sample-rate", HeaderValue::from(out_rate));
    if !ignored.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&ignored.join(", ")) {
            headers.insert("x-ignored-fields", value);
        }
    }
    Ok(response)
}

/// The served voice a request names (and the cloned voice, when it names
/// one): a served voice's name first, then a cloned voice's id or name. An
/// unknown name is a 400 (a 404 for `{"id": ...}`) that says where the
/// voices are listed.
fn resolve_voice(
    app: &App,
    voice: Option<&VoiceField>,
) -> Result<(usize, Option<ClonedVoiceInfo>), ApiError> {
    let Some(voice) = voice else {
        return Ok((0, None));
    };
    let key = voice.key();
    if let Ok(index) = app.voice_index(Some(key)) {
        return Ok((index, None));
    }
    if let Some(&(_, index)) = app.aliases.iter().find(|(alias, _)| alias == key) {
        return Ok((index, None));
    }
    if let Some(info) = app.cloned.find(key) {
        // Served voices are given at start-up: a voice cloned by a voice no
        // longer served cannot speak until that voice is served again.
        let index = app
            .voices
            .iter()
            .position(|v| v.info.name == info.base_voice)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "voice_not_served",
                    format!(
                        "cloned voice {:?} is spoken by voice {:?}, which this server does not serve: start it with --voice {}",
                        info.id, info.base_voice, info.base_voice
                    ),
                )
            })?;
        return Ok((index, Some(info)));
    }
    let served: Vec<&str> = app.voices.iter().map(|v| v.info.name.as_str()).collect();
    let message = format!(
        "voice {key:?} is neither served here nor a cloned voice: use one of {} or a cloned voice's id (GET /v1/audio/voices lists them all)",
        served.join(", ")
    );
    Err(match voice {
        VoiceField::Name(_) => ApiError::bad_request("voice_not_found", message),
        VoiceField::Id { .. } => {
            ApiError::invalid(StatusCode::NOT_FOUND, "voice_not_found", message)
        }
    })
}

/// The conditioning of a cloned voice: kept from its upload, or computed
/// from its stored recording once after a restart (one at a time, like
/// every other recording the server analyses).
async fn cloned_speaker(
    app: &Arc<App>,
    index: usize,
    info: &ClonedVoiceInfo,
    deadline: TokioInstant,
) -> Result<ClonedSpeaker, ApiError> {
    if let Some(speaker) = app.cloned.speaker(&info.id) {
        return Ok(speaker);
    }
    let slot = analysis_slot(app, deadline).await?;
    let id = info.id.clone();
    let worker = Arc::clone(app);
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        if let Some(speaker) = worker.cloned.speaker(&id) {
            return Ok(speaker); // another request computed it meanwhile
        }
        let (samples, rate) = worker
            .cloned
            .recording(&id)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let speaker = worker.voices[index]
            .voice
            .clone_speaker(&samples, rate)
            .map_err(|e| ApiError::internal(format!("cannot clone voice {id} again: {e}")))?;
        worker.cloned.remember(&id, speaker.clone());
        Ok(speaker)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the voice cloning stopped: {e}")))?
}

/// The one permit for analysing a recording (embedding or cloning: each
/// uses every core), waited for until `deadline`.
async fn analysis_slot(
    app: &App,
    deadline: TokioInstant,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    timeout_at(deadline, Arc::clone(&app.encoder_slot).acquire_owned())
        .await
        .map_err(|_| ApiError::timeout(app.config.request_timeout.as_secs_f64()))?
        .map_err(|_| ApiError::internal("the server is shutting down"))
}

/// The next sentence of `order` before `deadline`: a 504 after it, a 5xx
/// when synthesis failed, `None` after the last.
async fn next_in_time(
    order: &mut InOrder,
    deadline: TokioInstant,
    limit: std::time::Duration,
) -> Result<Option<Vec<f32>>, ApiError> {
    match timeout_at(deadline, order.next()).await {
        Err(_) => Err(ApiError::timeout(limit.as_secs_f64())),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(synthesis_error(&e)),
        Ok(Some(Ok(audio))) => Ok(Some(audio)),
    }
}

/// Sends the sentences after the first as they finish, until the last
/// (then marks the stream `completed`), a failure, the deadline (which also
/// bounds waiting on a client that stops reading), or the client going
/// away. Returning drops `order`, which takes its unstarted sentences off
/// the queue and frees its place.
async fn stream_rest(
    mut order: InOrder,
    tx: mpsc::Sender<Bytes>,
    (encoder, events): (StreamEncoder, Option<Events>),
    deadline: TokioInstant,
    app: Arc<App>,
    accepted: Instant,
    completed: Arc<AtomicBool>,
) {
    let send_all = async {
        let mut encoder = encoder;
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return Err("the client went away"),
                next = order.next() => next,
            };
            let audio = match next {
                None => break,
                Some(Ok(audio)) => audio,
                Some(Err(e)) => {
                    tracing::error!("synthesis failed while streaming: {e}");
                    return Err("synthesis failed");
                }
            };
            let (next, bytes) = encode(encoder, audio).await.map_err(|e| {
                tracing::error!("{e}");
                "encoding failed"
            })?;
            encoder = next;
            let bytes = match &events {
                Some(events) => events.delta(&bytes),
                None => bytes,
            };
            if tx.send(bytes).await.is_err() {
                return Err("the client went away");
            }
        }
        let end = tokio::task::spawn_blocking(move || encoder.finish())
            .await
            .map_err(|_| "the encoder stopped")?
            .map_err(|e| {
                tracing::error!("{e}");
                "encoding failed"
            })?;
        let end = match &events {
            Some(events) if end.is_empty() => events.done(),
            Some(events) => [events.delta(&end), events.done()].concat().into(),
            None => end,
        };
        if !end.is_empty() && tx.send(end).await.is_err() {
            return Err("the client went away");
        }
        Ok(())
    };
    match timeout_at(deadline, send_all).await {
        Ok(Ok(())) => {
            completed.store(true, Ordering::Release);
            app.metrics
                .request_seconds
                .observe(accepted.elapsed().as_secs_f64());
        }
        Ok(Err(why)) => tracing::debug!("stream ended early: {why}"),
        Err(_) => tracing::warn!(
            "a request ran past its {} s limit while streaming",
            app.config.request_timeout.as_secs_f64()
        ),
    }
}

/// OpenAI's speech events (`stream_format: "sse"`): each piece of the
/// encoded audio as a `speech.audio.delta` event in base64, then one
/// `speech.audio.done` event with the usage.
struct Events {
    /// The model's input units (phonemes or text tokens) of the request.
    input_tokens: usize,
}

impl Events {
    fn event(value: &serde_json::Value) -> Bytes {
        Bytes::from(format!("data: {value}\n\n"))
    }

    fn delta(&self, audio: &[u8]) -> Bytes {
        use base64::Engine;
        let audio = base64::engine::general_purpose::STANDARD.encode(audio);
        Self::event(&serde_json::json!({ "type": "speech.audio.delta", "audio": audio }))
    }

    /// The last event: Vivace counts no output tokens (audio is not
    /// tokenized for billing here).
    fn done(&self) -> Bytes {
        Self::event(&serde_json::json!({
            "type": "speech.audio.done",
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": 0,
                "total_tokens": self.input_tokens,
            }
        }))
    }
}

/// `audio` through `encoder` off the async threads (MP3 and Opus encoding
/// takes milliseconds per sentence); the encoder comes back for the next.
async fn encode(
    mut encoder: StreamEncoder,
    audio: Vec<f32>,
) -> Result<(StreamEncoder, Bytes), String> {
    tokio::task::spawn_blocking(move || {
        let bytes = encoder.push(&audio)?;
        Ok((encoder, bytes))
    })
    .await
    .map_err(|e| format!("the audio encoder stopped: {e}"))?
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
    if let SynthError::TooLong(too_long) = e {
        return ApiError::bad_request(
            "sentence_too_long",
            format!("{too_long}: raise `speed`, or split the sentence"),
        );
    }
    // Parameters the voice refuses when it starts (Kokoro's speed range).
    if let SynthError::InvalidParams(reason) = e {
        return ApiError::bad_request("invalid_params", reason.clone());
    }
    tracing::error!("synthesis failed: {e}");
    match e {
        SynthError::OutOfMemory => ApiError {
            code: "out_of_memory",
            ..ApiError::overloaded(format!("{e}: retry later or send shorter sentences"), 1)
        },
        other => ApiError::internal(format!("synthesis failed: {other}")),
    }
}

/// `GET /v1/voices`: the voices this server speaks with.
pub async fn voices(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let data: Vec<serde_json::Value> = app
        .voices
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
    headers: axum::http::HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_multipart(&headers, "file")?;
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
        .map_err(|e| ApiError::from_status(e.status(), "invalid_upload", e.body_text()))?
    {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("upload.wav").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::from_status(e.status(), "invalid_upload", e.body_text()))?;
            upload = Some((name, bytes));
        }
    }
    let Some((name, bytes)) = upload else {
        return Err(ApiError::bad_request(
            "missing_file",
            "no `file` field: upload the WAV recording as multipart field `file`",
        ));
    };
    // One embedding at a time (the encoder uses every core); the permit
    // moves into the work, so a client hanging up does not free it early.
    let deadline = TokioInstant::now() + app.config.request_timeout;
    let slot = analysis_slot(&app, deadline).await?;
    let embedding = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let what = Path::new(&name);
        let recording = speaker_audio::read_wav_from(Cursor::new(bytes), what)?;
        let seconds = recording.samples.len() as f64 / f64::from(recording.sample_rate);
        if seconds > MAX_UPLOAD_SECONDS {
            return Err(SpeakerError::Frontend(vivace_frontend::Error::BadAudio {
                path: what.to_path_buf(),
                reason: format!(
                    "{seconds:.0} s long, more than the {MAX_UPLOAD_SECONDS} s this endpoint takes: upload a shorter clip (10 to 30 s of speech is plenty)"
                ),
            }));
        }
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

/// A 415 unless the request is `multipart/form-data`; `field` names the
/// recording's field in the message.
fn require_multipart(headers: &axum::http::HeaderMap, field: &str) -> Result<(), ApiError> {
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    match multipart {
        true => Ok(()),
        false => Err(ApiError::invalid(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("upload the recording as multipart/form-data with a `{field}` field"),
        )),
    }
}

/// Longest name of a cloned voice, in characters.
const MAX_VOICE_NAME_CHARS: usize = 256;

/// `POST /v1/audio/voices`: clones the voice of an uploaded WAV recording
/// (OpenAI's multipart fields `name`, `audio_sample` and `consent`; the
/// extension `voice` names the served voice that clones it, by default the
/// first that can) and keeps it on disk. The conditioning is computed here,
/// so a recording that cannot be cloned is refused now, not at first use.
pub async fn create_voice(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_multipart(&headers, "audio_sample")?;
    let mut form = form?;
    let (mut name, mut consent, mut base, mut upload) = (None, None, None, None);
    let mut kind: Option<String> = None;
    let field_error = |e: axum::extract::multipart::MultipartError| {
        ApiError::from_status(e.status(), "invalid_upload", e.body_text())
    };
    while let Some(field) = form.next_field().await.map_err(field_error)? {
        match field.name() {
            Some("audio_sample") => {
                let file = field.file_name().unwrap_or("audio_sample.wav").to_string();
                upload = Some((file, field.bytes().await.map_err(field_error)?));
            }
            Some("name") => name = Some(field.text().await.map_err(field_error)?),
            Some("consent") => consent = Some(field.text().await.map_err(field_error)?),
            Some("voice") => base = Some(field.text().await.map_err(field_error)?),
            Some("type") => kind = Some(field.text().await.map_err(field_error)?),
            _ => {}
        }
    }
    // Checked once the whole body is read: answering mid-upload would cut
    // the client off while it is still sending.
    if let Some(kind) = kind.filter(|k| k != "audio_sample") {
        return Err(ApiError::bad_request(
            "unsupported_voice_type",
            format!("voices of type {kind:?} are not made here: upload a recording as `audio_sample` (type audio_sample)"),
        ));
    }
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_VOICE_NAME_CHARS {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("give the voice a `name` field of 1 to {MAX_VOICE_NAME_CHARS} characters"),
        ));
    }
    let Some((file, bytes)) = upload else {
        return Err(ApiError::bad_request(
            "missing_file",
            "no `audio_sample` field: upload the WAV recording to clone as multipart field `audio_sample`",
        ));
    };
    let index = match base.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(base) => {
            let index = app.voice_index(Some(base))?;
            if !app.voices[index].voice.capabilities().clones {
                return Err(ApiError::bad_request(
                    "voice_cannot_clone",
                    format!("voice {base:?} cannot clone a recording: name a voice that can (a Chatterbox folder), or leave `voice` out"),
                ));
            }
            index
        }
        None => app
            .voices
            .iter()
            .position(|v| v.voice.capabilities().clones)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "voice_cannot_clone",
                    "no voice served here can clone a recording: serve a Chatterbox folder (vivace serve --voice DIR) to clone voices",
                )
            })?,
    };
    let deadline = TokioInstant::now() + app.config.request_timeout;
    let slot = analysis_slot(&app, deadline).await?;
    let worker = Arc::clone(&app);
    let info = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let what = Path::new(&file);
        let invalid = |e: String| ApiError::bad_request("invalid_audio", e);
        let recording =
            speaker_audio::read_wav_from(Cursor::new(bytes), what).map_err(|e| invalid(e.to_string()))?;
        let seconds = recording.samples.len() as f64 / f64::from(recording.sample_rate);
        if seconds > MAX_UPLOAD_SECONDS {
            return Err(invalid(format!(
                "{}: {seconds:.0} s long, more than the {MAX_UPLOAD_SECONDS} s this endpoint takes: upload a shorter clip (10 to 30 s of speech is plenty)",
                what.display()
            )));
        }
        let served = &worker.voices[index];
        let speaker = served
            .voice
            .clone_speaker(&recording.samples, recording.sample_rate)
            .map_err(|e| match e {
                SynthError::Reference(_) | SynthError::InvalidParams(_) | SynthError::CannotClone => {
                    invalid(e.to_string())
                }
                other => ApiError::internal(other.to_string()),
            })?;
        worker
            .cloned
            .add(
                &name,
                &served.info.name,
                consent,
                &recording.samples,
                recording.sample_rate,
                speaker,
            )
            .map_err(|e| match e {
                ClonedVoiceError::Full { .. } => ApiError::invalid(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "voice_storage_full",
                    e.to_string(),
                ),
                other => ApiError::internal(other.to_string()),
            })
    })
    .await
    .map_err(|e| ApiError::internal(format!("the voice cloning stopped: {e}")))??;
    tracing::info!(id = %info.id, base = %info.base_voice, "cloned a voice");
    Ok(Json(cloned_json(&info)))
}

/// A cloned voice as OpenAI's `audio.voice` object, with Vivace's fields.
fn cloned_json(info: &ClonedVoiceInfo) -> serde_json::Value {
    serde_json::json!({
        "object": "audio.voice",
        "id": info.id,
        "name": info.name,
        "type": "audio_sample",
        "created_at": info.created_at,
        "base_voice": info.base_voice,
        "seconds": info.seconds,
    })
}

/// `GET /v1/audio/voices`: every voice a request can name (served, alias,
/// cloned), as `{"voices": [{"id", "name", ...}]}`.
pub async fn list_voices(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let served = app.voices.iter().map(|v| {
        let capabilities = v.voice.capabilities();
        serde_json::json!({
            "object": "audio.voice",
            "id": v.info.name,
            "name": v.info.name,
            "type": "served",
            "family": capabilities.family,
            "languages": capabilities.languages,
            "sample_rate": v.info.sample_rate,
            "clones": capabilities.clones,
        })
    });
    let aliases = app.aliases.iter().map(|(alias, index)| {
        serde_json::json!({
            "object": "audio.voice",
            "id": alias,
            "name": alias,
            "type": "alias",
            "voice": app.voices[*index].info.name,
        })
    });
    let cloned = app.cloned.list();
    let voices: Vec<serde_json::Value> = served
        .chain(aliases)
        .chain(cloned.iter().map(cloned_json))
        .collect();
    Json(serde_json::json!({ "voices": voices }))
}

/// `DELETE /v1/audio/voices/{id}`: removes a cloned voice from disk.
pub async fn delete_voice(
    State(app): State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Only ids this server made are looked up, and only in memory.
    let removed = match app.cloned.find(&id).filter(|info| info.id == id) {
        Some(info) => {
            let worker = Arc::clone(&app);
            tokio::task::spawn_blocking(move || worker.cloned.remove(&info.id))
                .await
                .map_err(|e| ApiError::internal(format!("the deletion stopped: {e}")))?
        }
        None => Err(ClonedVoiceError::NotFound(id)),
    };
    let info = removed.map_err(|e| match e {
        ClonedVoiceError::NotFound(_) => {
            ApiError::invalid(StatusCode::NOT_FOUND, "voice_not_found", e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    })?;
    Ok(Json(serde_json::json!({
        "object": "audio.voice.deleted",
        "id": info.id,
        "deleted": true,
    })))
}

/// `GET /v1/models`: the model names `POST /v1/audio/speech` accepts.
pub async fn models() -> Json<serde_json::Value> {
    let data: Vec<serde_json::Value> = MODELS
        .iter()
        .map(|id| serde_json::json!({ "id": id, "object": "model", "created": 0, "owned_by": "vivace" }))
        .collect();
    Json(serde_json::json!({ "object": "list", "data": data }))
}

/// `GET /health`: the process is up (no authentication).
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: voices loaded and warmed up (503 until then, or for good
/// when warm-up failed, saying why).
pub async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        return Json(serde_json::json!({ "status": "ready" })).into_response();
    }
    let status = match app.warmup_error.get() {
        Some(e) => e.clone(),
        None => "warming up".to_string(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "status": status })),
    )
        .into_response()
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

#[cfg(test)]
mod tests {
    use super::*;
    use vivace_models::vits::TooLong;

    #[test]
    fn parameters_a_voice_refuses_are_the_clients_400() {
        let e = synthesis_error(&SynthError::InvalidParams(
            "speed 3 is outside 0.5 to 2.0".into(),
        ));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("speed 3"), "{}", e.message);
    }

    #[test]
    fn a_sentence_too_long_is_the_clients_400_naming_speed_not_a_cli_flag() {
        let e = synthesis_error(&SynthError::TooLong(TooLong::Sentence { frames: 1e6 }));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "sentence_too_long");
        assert!(e.message.contains("`speed`"), "{}", e.message);
        assert!(!e.message.contains("--length-scale"), "{}", e.message);
        let e = synthesis_error(&SynthError::OutOfMemory);
        assert_eq!(e.code, "out_of_memory");
    }
}

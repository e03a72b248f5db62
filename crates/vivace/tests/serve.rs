//! `vivace serve` end to end: the real binary on an ephemeral loopback port,
//! spoken to over HTTP as clients do (OpenAI's speech API, multipart uploads,
//! Prometheus scrapes), including every error, the API key, the full queue,
//! cancellation and a graceful shutdown with requests in flight.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{default_voice, read_f32, scratch};

/// A running `vivace serve`, killed when dropped. One runs at a time: each
/// uses every core, and several at once would make timing-based checks
/// (streaming, batching windows) depend on the others.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static ONE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Server {
    /// Starts `vivace serve --port 0 --device cpu ARGS` with `envs` and waits
    /// until `/ready` answers 200.
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
        default_voice(); // fetched once, before any server looks for it
        let one_at_a_time = ONE_SERVER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = scratch();
        let log = dir.path().join("server.log");
        let mut cmd = crate::util::vivace();
        cmd.args(["serve", "--port", "0", "--device", "cpu"])
            .args(args)
            .env_remove("VIVACE_API_KEY")
            .env_remove("VIVACE_VOICE_ENCODER")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the server log"));
        let mut child = cmd.spawn().expect("start vivace serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("vivace: listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let server = Server {
            child,
            base,
            log,
            _dir: dir,
            _one_at_a_time: one_at_a_time,
        };
        let start = Instant::now();
        loop {
            let key = envs.iter().find(|(k, _)| *k == "VIVACE_API_KEY");
            let mut req = agent().get(&server.url("/ready"));
            if let Some((_, key)) = key {
                req = req.header("Authorization", &format!("Bearer {key}"));
            }
            if req.call().is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "not ready: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `POST /v1/audio/speech` with a JSON body; status, headers and body.
    fn speech(&self, body: &serde_json::Value) -> Reply {
        let response = agent()
            .post(&self.url("/v1/audio/speech"))
            .content_type("application/json")
            .send(body.to_string())
            .expect("send the request");
        Reply::read(response)
    }

    /// One metric's value from `/metrics` (the first line starting with `name`).
    fn metric(&self, name: &str) -> f64 {
        let text = agent()
            .get(&self.url("/metrics"))
            .call()
            .expect("scrape")
            .body_mut()
            .read_to_string()
            .expect("metrics text");
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that reports every status instead of failing on 4xx/5xx.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A whole response.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn read(mut response: ureq::http::Response<ureq::Body>) -> Reply {
        let body = response
            .body_mut()
            .with_config()
            .limit(100 << 20)
            .read_to_vec()
            .expect("read the whole body");
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an OpenAI-shaped error with `status` and `code`.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let json = self.json();
        let error = &json["error"];
        assert_eq!(error["code"], code, "{json}");
        assert!(error["type"].is_string(), "{json}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.len() > 10),
            "{json}"
        );
    }
}

/// Samples of a streamed WAV: the header is checked by `hound` after its two
/// size fields (unknown while streaming, 0xFFFFFFFF) are set to the length
/// received, as a recorder that saves the stream does.
fn decode_streamed_wav(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
    assert!(bytes.len() > 44, "no audio after the header");
    assert_eq!(&bytes[4..8], &[0xFF; 4], "RIFF size of a streamed WAV");
    assert_eq!(&bytes[40..44], &[0xFF; 4], "data size of a streamed WAV");
    let mut fixed = bytes.to_vec();
    let riff = (fixed.len() - 8) as u32;
    let data = (fixed.len() - 44) as u32;
    fixed[4..8].copy_from_slice(&riff.to_le_bytes());
    fixed[40..44].copy_from_slice(&data.to_le_bytes());
    let reader = hound::WavReader::new(std::io::Cursor::new(fixed)).expect("a valid WAV");
    let spec = reader.spec();
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .expect("16-bit samples");
    (spec, samples)
}

fn long_text(sentences: usize) -> String {
    (1..=sentences)
        .map(|i| format!("Sentence number {i} is here to keep the workers busy for a while."))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends a speech request over a raw socket and reads up to the end of the
/// response headers; the caller decides whether to read on or hang up.
fn raw_speech(addr: &str, body: &serde_json::Value) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let body = body.to_string();
    write!(
        stream,
        "POST /v1/audio/speech HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

#[test]
fn speech_in_every_format_at_the_voices_rate() {
    let server = Server::start(&["--no-embeddings"], &[]);
    let voices = agent()
        .get(&server.url("/v1/voices"))
        .call()
        .map(Reply::read)
        .expect("voices");
    assert_eq!(voices.status, 200);
    let voices = voices.json();
    let voice = &voices["data"][0];
    assert_eq!(voice["sample_rate"], 22050, "{voices}");
    assert_eq!(voice["language"], "en_US", "{voices}");
    assert_eq!(voice["speakers"], 1, "{voices}");
    let name = voice["id"].as_str().expect("voice id").to_string();

    let text = "Hello world. This is Vivace speaking.";
    let wav = server.speech(&serde_json::json!({
        "model": "tts-1", "input": text, "voice": name, "response_format": "wav", "seed": 5
    }));
    assert_eq!(wav.status, 200, "{}", String::from_utf8_lossy(&wav.body));
    assert_eq!(wav.header("content-type"), "audio/wav");
    let (spec, samples) = decode_streamed_wav(&wav.body);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (22050, 1, 16)
    );
    let seconds = samples.len() as f64 / 22050.0;
    assert!(
        (1.0..6.0).contains(&seconds),
        "{seconds} s of audio for two sentences"
    );
    // Piper normalizes each sentence to full scale.
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(peak > 30_000, "peak {peak}");

    // pcm at the voice's rate (`sample_rate`, Vivace's extension) is the
    // same samples without a header.
    let pcm = server.speech(&serde_json::json!({
        "input": text, "response_format": "pcm", "seed": 5, "sample_rate": 22050
    }));
    assert_eq!(pcm.status, 200);
    assert_eq!(pcm.header("content-type"), "audio/pcm");
    assert_eq!(pcm.header("x-sample-rate"), "22050");
    assert_eq!(pcm.body.len() % 2, 0);
    let pcm_seconds = pcm.body.len() as f64 / 2.0 / 22050.0;
    assert!(
        (pcm_seconds - seconds).abs() < 0.25 * seconds,
        "pcm {pcm_seconds} s against wav {seconds} s"
    );
    assert_ne!(&pcm.body[..4], b"RIFF");

    let flac =
        server.speech(&serde_json::json!({ "input": text, "response_format": "flac", "seed": 5 }));
    assert_eq!(flac.status, 200);
    assert_eq!(flac.header("content-type"), "audio/flac");
    let mut reader = claxon::FlacReader::new(std::io::Cursor::new(&flac.body)).expect("FLAC");
    assert_eq!(reader.streaminfo().sample_rate, 22050);
    let decoded: Vec<i32> = reader.samples().map(|s| s.expect("sample")).collect();
    // WAV, FLAC (decoded by claxon) and pcm at the voice's rate: the same
    // samples for the same seed.
    let pcm_samples: Vec<i16> = pcm
        .body
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(samples, pcm_samples, "WAV and pcm");
    let flac_samples: Vec<i16> = decoded.iter().map(|&v| v as i16).collect();
    assert_eq!(flac_samples, pcm_samples, "FLAC and pcm");

    // mp3 (the default) and opus, decoded by independent decoders: the
    // same length as the 16-bit render (MP3 adds its encoder delay and
    // frame padding; Ogg Opus trims both) and the same loudness contour.
    let reference: Vec<f32> = pcm
        .body
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let mp3 = server.speech(&serde_json::json!({ "input": text, "seed": 5 }));
    assert_eq!(mp3.status, 200);
    assert_eq!(mp3.header("content-type"), "audio/mpeg");
    let (rate, decoded) = decode_mp3(&mp3.body);
    assert_eq!(rate, 22050);
    let extra = decoded.len() as i64 - reference.len() as i64;
    assert!(
        (0..=3 * 1152).contains(&extra),
        "MP3 of {} samples for {} (encoder delay and padding only)",
        decoded.len(),
        reference.len()
    );
    let contour = envelope_match(&reference, &decoded, 22050);
    assert!(contour > 0.99, "MP3 loudness contour correlation {contour}");

    let opus =
        server.speech(&serde_json::json!({ "input": text, "response_format": "opus", "seed": 5 }));
    assert_eq!(opus.status, 200);
    assert_eq!(opus.header("content-type"), "audio/ogg");
    assert_eq!(opus.header("x-sample-rate"), "24000");
    let decoded = decode_ogg_opus(&opus.body, 24_000);
    let at_24k = vivace_frontend::resample::resample(&reference, 22050, 24_000).expect("resample");
    assert!(
        (decoded.len() as i64 - at_24k.len() as i64).abs() <= 2,
        "Opus decodes to {} samples, the audio is {}",
        decoded.len(),
        at_24k.len()
    );
    let contour = envelope_match(&at_24k, &decoded, 24_000);
    assert!(
        contour > 0.99,
        "Opus loudness contour correlation {contour}"
    );

    // pcm without a sample_rate is OpenAI's: 24 kHz, the same audio
    // resampled (each sentence on its own: a sample or so per sentence).
    let default_pcm = server.speech(&serde_json::json!({
        "input": text, "response_format": "pcm", "seed": 5, "instructions": "Speak calmly.",
        "exaggeration": 0.7
    }));
    assert_eq!(default_pcm.status, 200);
    assert_eq!(default_pcm.header("x-sample-rate"), "24000");
    assert_eq!(
        default_pcm.header("x-ignored-fields"),
        "exaggeration, instructions"
    );
    let expected = reference.len() as f64 * 24_000.0 / 22050.0;
    let got = default_pcm.body.len() as f64 / 2.0;
    assert!(
        (got - expected).abs() <= 4.0,
        "{got} samples at 24 kHz for {expected}"
    );

    // stream_format sse: OpenAI's events, the same audio in base64 pieces,
    // then the usage.
    let events = server.speech(&serde_json::json!({
        "input": text, "response_format": "pcm", "seed": 5, "stream_format": "sse"
    }));
    assert_eq!(events.status, 200);
    assert_eq!(events.header("content-type"), "text/event-stream");
    let text_events = String::from_utf8(events.body.clone()).expect("UTF-8 events");
    let parsed: Vec<serde_json::Value> = text_events
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").expect("a data line");
            serde_json::from_str(data).expect("a JSON event")
        })
        .collect();
    let (done, deltas) = parsed.split_last().expect("events");
    assert_eq!(done["type"], "speech.audio.done");
    assert!(
        done["usage"]["input_tokens"]
            .as_u64()
            .is_some_and(|n| n > 10),
        "{done}"
    );
    let mut audio = Vec::new();
    for delta in deltas {
        use base64::Engine;
        assert_eq!(delta["type"], "speech.audio.delta");
        let piece = delta["audio"].as_str().expect("base64 audio");
        audio.extend(
            base64::engine::general_purpose::STANDARD
                .decode(piece)
                .expect("base64"),
        );
    }
    assert_eq!(audio, default_pcm.body, "the events carry the same audio");
    server
        .speech(&serde_json::json!({ "input": text, "response_format": "flac", "stream_format": "sse" }))
        .assert_error(400, "unsupported_stream_format");

    // speed 2 halves the duration (length scale / 2), within the noise.
    let fast = server.speech(&serde_json::json!({
        "input": text, "response_format": "pcm", "speed": 2.0
    }));
    assert_eq!(fast.status, 200);
    let fast_seconds = fast.body.len() as f64 / 2.0 / 24_000.0;
    assert!(
        (0.35..0.7).contains(&(fast_seconds / pcm_seconds)),
        "speed 2: {fast_seconds} s against {pcm_seconds} s"
    );
}

/// An MP3 file's rate and samples, decoded by symphonia.
fn decode_mp3(bytes: &[u8]) -> (u32, Vec<f32>) {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;
    let source = MediaSourceStream::new(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        Default::default(),
    );
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .expect("an MP3 stream");
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .expect("an MP3 decoder");
    let mut samples = Vec::new();
    let mut rate = 0;
    while let Ok(packet) = format.next_packet() {
        let decoded = decoder.decode(&packet).expect("an MP3 frame");
        rate = decoded.spec().rate;
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        samples.extend_from_slice(buffer.samples());
    }
    (rate, samples)
}

/// An Ogg Opus file decoded at `rate`: the container read by `opus-pure`,
/// the packets decoded by `opus-rs` (not the encoder's code), pre-skip and
/// end trim applied.
fn decode_ogg_opus(bytes: &[u8], rate: i32) -> Vec<f32> {
    let mut reader = opus_pure::OggOpusReader::new(std::io::Cursor::new(bytes.to_vec()))
        .expect("an Ogg Opus stream");
    assert_eq!(reader.head().channel_count, 1);
    let mut trim = opus_pure::Trim::new(reader.head(), rate, 1).expect("trim");
    let mut decoder = opus_rs::OpusDecoder::new(rate, 1).expect("an Opus decoder");
    let mut out = Vec::new();
    let mut pcm = vec![0f32; rate as usize * 120 / 1000];
    while let Some(packet) = reader.read_packet().expect("an Ogg page") {
        let n = decoder
            .decode(&packet.data, pcm.len(), &mut pcm)
            .expect("an Opus packet");
        out.extend_from_slice(trim.keep(&packet, &pcm[..n]));
    }
    out
}

/// Correlation of the RMS contours of `a` and `b` (20 ms windows every
/// 2.5 ms) at the lag, up to 0.2 s, where they agree best: a codec keeps
/// when and how loud the speech is, whatever it does to the waveform.
fn envelope_match(a: &[f32], b: &[f32], rate: usize) -> f64 {
    let (window, hop) = (rate / 50, rate / 400);
    let contour = |x: &[f32]| -> Vec<f64> {
        (0..x.len().saturating_sub(window) / hop)
            .map(|i| {
                let w = &x[i * hop..i * hop + window];
                (w.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / window as f64).sqrt()
            })
            .collect()
    };
    let (ea, eb) = (contour(a), contour(b));
    (0..=80)
        .map(|lag| {
            let n = ea.len().min(eb.len().saturating_sub(lag));
            let (x, y) = (&ea[..n], &eb[lag..lag + n]);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let (mx, my) = (mean(x), mean(y));
            let cov: f64 = x.iter().zip(y).map(|(p, q)| (p - mx) * (q - my)).sum();
            let vx: f64 = x.iter().map(|p| (p - mx) * (p - mx)).sum();
            let vy: f64 = y.iter().map(|q| (q - my) * (q - my)).sum();
            cov / (vx * vy).sqrt().max(1e-12)
        })
        .fold(f64::MIN, f64::max)
}

#[test]
fn first_audio_streams_before_the_rest_is_synthesized() {
    let server = Server::start(&["--no-embeddings"], &[]);
    let start = Instant::now();
    let mut response = agent()
        .post(&server.url("/v1/audio/speech"))
        .content_type("application/json")
        .send(serde_json::json!({ "input": long_text(8), "response_format": "pcm" }).to_string())
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("transfer-encoding")
            .map(|v| v.as_bytes()),
        Some(&b"chunked"[..])
    );
    let mut reader = response.body_mut().as_reader();
    let mut first = [0u8; 2];
    reader.read_exact(&mut first).expect("first bytes");
    let first_bytes = start.elapsed();
    // The rest of the request is still being synthesized.
    let in_flight = server.metric("vivace_speech_requests_in_flight");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("the rest");
    let total = start.elapsed();
    assert_eq!(
        in_flight, 1.0,
        "the request had finished before its first bytes arrived"
    );
    assert!(
        first_bytes < total / 2,
        "first bytes after {first_bytes:?}, whole response after {total:?}"
    );
    let seconds = (rest.len() + 2) as f64 / 2.0 / 24_000.0;
    assert!(seconds > 15.0, "{seconds} s of audio for eight sentences");
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let server = Server::start(&["--no-embeddings", "--max-input-chars", "200"], &[]);
    let post = |content_type: &str, body: &str| {
        agent()
            .post(&server.url("/v1/audio/speech"))
            .content_type(content_type)
            .send(body.to_string())
            .map(Reply::read)
            .expect("send")
    };
    post("application/json", "{\"input\": \"Hello\"").assert_error(400, "invalid_json");
    post("application/json", "{\"voice\": \"x\"}").assert_error(400, "invalid_request");
    post("text/plain", "{\"input\": \"Hello\"}").assert_error(415, "unsupported_media_type");
    let speech = |body: serde_json::Value| server.speech(&body);
    speech(serde_json::json!({ "input": "Hello", "voice": "no-such-voice" }))
        .assert_error(400, "voice_not_found");
    speech(serde_json::json!({ "input": "Hello", "voice": { "id": "voice_0000000000000000" } }))
        .assert_error(404, "voice_not_found");
    speech(serde_json::json!({ "input": "Hello", "response_format": "mp3", "sample_rate": 16000 }))
        .assert_error(400, "invalid_sample_rate");
    speech(serde_json::json!({ "input": "Hello", "response_format": "pcm", "sample_rate": 1 }))
        .assert_error(400, "invalid_sample_rate");
    speech(serde_json::json!({ "input": "Hello", "voice": "../../etc/passwd" }))
        .assert_error(400, "voice_not_found");
    speech(serde_json::json!({ "input": "Hello", "model": "whisper-1" }))
        .assert_error(404, "model_not_found");
    speech(serde_json::json!({ "input": "" })).assert_error(400, "empty_input");
    speech(serde_json::json!({ "input": " \n\t " })).assert_error(400, "empty_input");
    speech(serde_json::json!({ "input": "Hello", "response_format": "aac" }))
        .assert_error(400, "unsupported_format");
    speech(serde_json::json!({ "input": "Hello", "speed": 10.0 }))
        .assert_error(400, "invalid_speed");
    speech(serde_json::json!({ "input": "Hello", "speaker": "7" }))
        .assert_error(400, "invalid_speaker");
    speech(serde_json::json!({ "input": "a".repeat(201) })).assert_error(400, "input_too_long");
    // A body far over the limit is refused from its Content-Length, unread.
    // (Raw socket: the server answers and closes while the body is still
    // being written, so writing may fail; the answer is read regardless.)
    let huge = serde_json::json!({ "input": "a".repeat(200_000) }).to_string();
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = write!(
        stream,
        "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{huge}",
        huge.len()
    );
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"body_too_large\""), "{answer}");
    // A chunked body (no Content-Length) is cut off at the limit while read
    // (this one is a little over it: 70 KB against 66 KB).
    let over = serde_json::json!({ "input": "a".repeat(70_000) }).to_string();
    let mut reader = std::io::Cursor::new(over.into_bytes());
    let chunked = agent()
        .post(&server.url("/v1/audio/speech"))
        .content_type("application/json")
        .send(ureq::SendBody::from_reader(&mut reader))
        .map(Reply::read)
        .expect("send a chunked body");
    chunked.assert_error(413, "body_too_large");
    let unknown = agent()
        .get(&server.url("/v1/nothing"))
        .call()
        .map(Reply::read)
        .expect("send");
    unknown.assert_error(404, "not_found");
    let wrong_method = agent()
        .get(&server.url("/v1/audio/speech"))
        .call()
        .map(Reply::read)
        .expect("send");
    wrong_method.assert_error(405, "method_not_allowed");

    let ok = server.speech(&serde_json::json!({ "input": "Still serving." }));
    assert_eq!(ok.status, 200, "{}", server.log());
    // CORS is off unless configured: no browser origin is allowed.
    let from_browser = agent()
        .get(&server.url("/v1/voices"))
        .header("Origin", "https://elsewhere.example")
        .call()
        .map(Reply::read)
        .expect("send");
    assert_eq!(from_browser.header("access-control-allow-origin"), "");
    let errors =
        server.metric("vivace_http_requests_total{endpoint=\"/v1/audio/speech\",status=\"400\"}");
    assert_eq!(errors, 12.0);
}

#[test]
fn api_key_is_required_on_every_endpoint_but_health() {
    let key = "s3cret-key";
    let server = Server::start(&["--no-embeddings"], &[("VIVACE_API_KEY", key)]);
    let get = |path: &str, auth: Option<&str>| {
        let mut req = agent().get(&server.url(path));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req.call().map(Reply::read).expect("send")
    };
    assert_eq!(get("/health", None).status, 200);
    for path in ["/v1/voices", "/ready", "/metrics"] {
        let reply = get(path, None);
        reply.assert_error(401, "invalid_api_key");
        assert_eq!(reply.header("www-authenticate"), "Bearer");
        get(path, Some("Bearer wrong")).assert_error(401, "invalid_api_key");
        get(path, Some(&format!("Bearer {key}x"))).assert_error(401, "invalid_api_key");
        get(path, Some(key)).assert_error(401, "invalid_api_key");
        assert_eq!(get(path, Some(&format!("Bearer {key}"))).status, 200);
    }
    let speech = |auth: Option<&str>| {
        let mut req = agent()
            .post(&server.url("/v1/audio/speech"))
            .content_type("application/json");
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req.send(serde_json::json!({ "input": "Hello." }).to_string())
            .map(Reply::read)
            .expect("send")
    };
    speech(None).assert_error(401, "invalid_api_key");
    assert_eq!(speech(Some(&format!("Bearer {key}"))).status, 200);
}

#[test]
fn cors_allows_only_the_configured_origin() {
    let origin = "https://app.example";
    let server = Server::start(&["--no-embeddings", "--cors-origin", origin], &[]);
    let preflight = |from: &str| {
        agent()
            .options(&server.url("/v1/audio/speech"))
            .header("Origin", from)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type, authorization",
            )
            .call()
            .map(Reply::read)
            .expect("send")
    };
    let allowed = preflight(origin);
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), origin);
    assert!(allowed
        .header("access-control-allow-methods")
        .contains("POST"));
    let other = preflight("https://elsewhere.example");
    assert_eq!(other.header("access-control-allow-origin"), "");
}

#[test]
fn full_queue_answers_503_with_retry_after() {
    let server = Server::start(
        &["--no-embeddings", "--queue-size", "1", "--workers", "1"],
        &[],
    );
    // The first request holds the only place: its client reads nothing, so
    // its audio backs up and it stays pending.
    let (_held, head) = raw_speech(
        &server.addr(),
        &serde_json::json!({ "input": long_text(30), "response_format": "pcm" }),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let refused = server.speech(&serde_json::json!({ "input": "Hello." }));
    refused.assert_error(503, "queue_full");
    assert_eq!(refused.header("retry-after"), "1");
}

#[test]
fn a_client_that_hangs_up_cancels_its_queued_sentences() {
    let server = Server::start(&["--no-embeddings", "--workers", "1"], &[]);
    let (mut stream, head) = raw_speech(
        &server.addr(),
        &serde_json::json!({ "input": long_text(30), "response_format": "pcm" }),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut some = [0u8; 1024];
    stream.read_exact(&mut some).expect("some audio");
    drop(stream);
    let start = Instant::now();
    loop {
        let cancelled = server.metric("vivace_sentences_cancelled_total");
        let in_flight = server.metric("vivace_speech_requests_in_flight");
        let depth = server.metric("vivace_queue_depth");
        if cancelled > 0.0 && in_flight == 0.0 && depth == 0.0 {
            // Nearly all of the 30 sentences were dropped unsynthesized.
            assert!(cancelled >= 20.0, "only {cancelled} sentences cancelled");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not cancelled: {cancelled} cancelled, {in_flight} in flight, depth {depth}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = server.speech(&serde_json::json!({ "input": "Still serving." }));
    assert_eq!(ok.status, 200);
}

#[test]
fn a_request_over_its_time_limit_gets_504() {
    let server = Server::start(&["--no-embeddings", "--request-timeout", "0.001"], &[]);
    server
        .speech(&serde_json::json!({ "input": long_text(3) }))
        .assert_error(504, "timeout");
}

#[test]
fn a_stream_past_its_time_limit_is_cut_off_and_frees_its_place() {
    let server = Server::start(
        &[
            "--no-embeddings",
            "--workers",
            "1",
            "--request-timeout",
            "1",
        ],
        &[],
    );
    // A client that reads: the response starts (200), then breaks off at
    // the limit instead of ending as if the audio were complete.
    let mut response = agent()
        .post(&server.url("/v1/audio/speech"))
        .content_type("application/json")
        .send(serde_json::json!({ "input": long_text(30), "response_format": "pcm" }).to_string())
        .expect("send");
    assert_eq!(response.status(), 200);
    let whole = response
        .body_mut()
        .with_config()
        .limit(100 << 20)
        .read_to_vec();
    assert!(whole.is_err(), "a cut-off stream ended like a complete one");
    // A client that reads nothing still loses its place at the limit.
    let (_silent, head) = raw_speech(
        &server.addr(),
        &serde_json::json!({ "input": long_text(30), "response_format": "pcm" }),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let start = Instant::now();
    while server.metric("vivace_speech_requests_in_flight") > 0.0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a client that stopped reading kept its place past the time limit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shutdown_finishes_requests_in_flight_and_refuses_new_ones() {
    let mut server = Server::start(&["--no-embeddings"], &[]);
    let alone =
        server.speech(&serde_json::json!({ "input": long_text(10), "response_format": "pcm" }));
    assert_eq!(alone.status, 200);
    let expected = alone.body.len() as f64;
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url("/v1/audio/speech");
            std::thread::spawn(move || {
                let response = agent()
                    .post(&url)
                    .content_type("application/json")
                    .send(
                        serde_json::json!({ "input": long_text(10), "response_format": "pcm" })
                            .to_string(),
                    )
                    .expect("send");
                Reply::read(response)
            })
        })
        .collect();
    let start = Instant::now();
    while server.metric("vivace_speech_requests_in_flight") < 3.0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "requests not accepted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let signalled = Instant::now();
    // New connections are refused while the accepted requests still stream.
    loop {
        if TcpStream::connect(server.addr()).is_err() {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still accepting connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server had exited instead of finishing its requests"
    );
    for client in clients {
        let reply = client.join().expect("client thread");
        assert_eq!(reply.status, 200);
        // The whole text: within the duration noise of the same text alone.
        let ratio = reply.body.len() as f64 / expected;
        assert!((0.8..1.25).contains(&ratio), "got {ratio} of the audio");
    }
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "did not exit after SIGTERM: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}: {}", server.log());
}

/// A multipart/form-data body with one file field.
fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    multipart_form(&[("model", "resemblyzer")], Some((field, file_name, bytes)))
}

/// A multipart/form-data body with text fields and at most one file field
/// (`(field, file name, bytes)`).
fn multipart_form(texts: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "vivace-test-boundary-7d3a";
    let mut body = Vec::new();
    for (name, value) in texts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((field, file_name, bytes)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: audio/wav\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn embeddings_of_an_upload_match_resemblyzer() {
    let server = Server::start(&[], &[]);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vivace-models/tests/fixtures/voice_encoder");
    let wav = std::fs::read(fixtures.join("speech_22k.wav")).expect("fixture");
    let upload = |field: &str, bytes: &[u8]| {
        let (content_type, body) = multipart(field, "speech_22k.wav", bytes);
        agent()
            .post(&server.url("/v1/audio/embeddings"))
            .content_type(&content_type)
            .send(&body[..])
            .map(Reply::read)
            .expect("send")
    };
    let reply = upload("file", &wav);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    let got: Vec<f32> = json["data"][0]["embedding"]
        .as_array()
        .expect("embedding")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    let reference = read_f32(&fixtures.join("speech_22k.embed.f32"));
    let cosine = vivace::speaker::cosine_similarity(&got, &reference);
    assert!(cosine > 0.999, "cosine {cosine} against resemblyzer");

    upload("file", b"this is not a WAV file").assert_error(400, "invalid_audio");
    // A header claiming an absurd sample rate would make resampling allocate
    // gigabytes: refused, and the server keeps serving.
    let block_align = u32::from(u16::from_le_bytes([wav[32], wav[33]]));
    for rate in [2_147_483_629u32, 1] {
        let mut hostile = wav.clone();
        hostile[24..28].copy_from_slice(&rate.to_le_bytes());
        // The byte rate agrees, so only the rate itself is wrong.
        hostile[28..32].copy_from_slice(&(rate * block_align).to_le_bytes());
        let reply = upload("file", &hostile);
        reply.assert_error(400, "invalid_audio");
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("sample rate")),
            "{}",
            reply.json()
        );
    }
    upload("recording", &wav).assert_error(400, "missing_file");
    let not_multipart = agent()
        .post(&server.url("/v1/audio/embeddings"))
        .content_type("application/json")
        .send("{}")
        .map(Reply::read)
        .expect("send");
    not_multipart.assert_error(415, "unsupported_media_type");
}

#[test]
fn metrics_are_prometheus_text_with_the_scheduler_figures() {
    let server = Server::start(&["--no-embeddings"], &[]);
    assert_eq!(
        server
            .speech(&serde_json::json!({ "input": long_text(2) }))
            .status,
        200
    );
    let mut scrape = agent().get(&server.url("/metrics")).call().expect("scrape");
    assert!(scrape
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text")));
    let text = scrape.body_mut().read_to_string().expect("text");
    let lines: Vec<&str> = text.lines().collect();
    for needed in [
        "# TYPE vivace_http_requests counter",
        "vivace_http_requests_total{endpoint=\"/v1/audio/speech\",status=\"200\"} 1",
        "# TYPE vivace_queue_depth gauge",
        "vivace_queue_depth 0",
        "# TYPE vivace_batch_size histogram",
        "vivace_batch_size_count 2",
        "vivace_batch_size_bucket{le=\"1.0\"} 2",
        "# TYPE vivace_speech_request_duration_seconds histogram",
        "vivace_speech_request_duration_seconds_count 1",
        "# TYPE vivace_real_time_factor histogram",
        "vivace_real_time_factor_count 2",
    ] {
        assert!(lines.contains(&needed), "no line {needed:?} in:\n{text}");
    }
    for memory in ["total", "free", "process_resident"] {
        let prefix = format!("vivace_memory_bytes{{device=\"cpu\",kind=\"{memory}\"}} ");
        let bytes: f64 = lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"));
        assert!(bytes > 1e6, "{memory}: {bytes}");
    }
    assert!(server.metric("vivace_audio_seconds_total") > 2.0);
}

#[test]
fn serve_refuses_bad_flags_with_a_clear_message() {
    let out = crate::util::vivace()
        .args(["serve", "--port", "0", "--queue-size", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--queue-size must be at least 1"), "{err}");
}

#[test]
fn openai_voice_names_and_models_answer_as_the_sdks_send_them() {
    // The SDK's own example sends voice "alloy": every OpenAI name speaks
    // with the first served voice, or with the voice --voice-alias gives.
    let server = Server::start(
        &["--no-embeddings", "--voice-alias", "nova=en_US-joe-medium"],
        &[],
    );
    let alloy = server.speech(&serde_json::json!({
        "model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "pcm", "seed": 3
    }));
    assert_eq!(alloy.status, 200, "{}", server.log());
    let joe = server.speech(&serde_json::json!({
        "voice": "en_US-joe-medium", "input": "Hello.", "response_format": "pcm", "seed": 3
    }));
    assert_eq!(alloy.body, joe.body, "alloy is the first served voice");
    let listed = agent()
        .get(&server.url("/v1/audio/voices"))
        .call()
        .map(Reply::read)
        .expect("list")
        .json();
    let voices = listed["voices"].as_array().expect("voices");
    for name in ["alloy", "nova", "cedar"] {
        assert!(
            voices.iter().any(|v| v["id"] == name
                && v["type"] == "alias"
                && v["voice"] == "en_US-joe-medium"),
            "{name} in {listed}"
        );
    }
    drop(server);
    let out = crate::util::vivace()
        .args([
            "serve",
            "--port",
            "0",
            "--no-embeddings",
            "--voice-alias",
            "alloy=nobody",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no served voice is called \"nobody\""),
        "{err}"
    );
}

#[test]
fn the_openai_rust_sdk_speaks_through_vivace() {
    // async-openai pointed at the server, called as its users call it: the
    // SDK's default request (voice alloy, no format: MP3), each format, the
    // SSE stream, and an unsupported format as the SDK's own error.
    use async_openai::config::OpenAIConfig;
    use async_openai::types::audio::{
        CreateSpeechRequest, CreateSpeechResponseStreamEvent, SpeechModel, SpeechResponseFormat,
        Voice,
    };
    use tokio_stream::StreamExt;
    let server = Server::start(&["--no-embeddings"], &[]);
    let client = async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(server.url("/v1"))
            .with_api_key("not-checked"),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let request = |format: Option<SpeechResponseFormat>| CreateSpeechRequest {
        input: "Your table is ready.".into(),
        model: SpeechModel::Tts1,
        voice: Voice::Alloy,
        response_format: format,
        ..Default::default()
    };
    runtime.block_on(async {
        let audio = client.audio();
        let speech = audio.speech();
        let default = speech
            .create(request(None))
            .await
            .expect("the SDK's default call");
        let (rate, samples) = decode_mp3(&default.bytes);
        assert_eq!(rate, 22050);
        assert!(samples.len() > 22050 / 2, "{} samples", samples.len());
        for (format, magic) in [
            (SpeechResponseFormat::Opus, &b"OggS"[..]),
            (SpeechResponseFormat::Wav, b"RIFF"),
            (SpeechResponseFormat::Flac, b"fLaC"),
        ] {
            let reply = speech
                .create(request(Some(format)))
                .await
                .expect("a format");
            assert!(reply.bytes.starts_with(magic), "{format:?}");
        }
        let pcm = speech
            .create(request(Some(SpeechResponseFormat::Pcm)))
            .await
            .expect("pcm");
        assert!(pcm.bytes.len() > 24_000 && pcm.bytes.len() % 2 == 0);

        let mut stream = speech
            .create_stream(request(Some(SpeechResponseFormat::Pcm)))
            .await
            .expect("an SSE stream");
        let (mut deltas, mut done) = (0, false);
        while let Some(event) = stream.next().await {
            match event.expect("an event") {
                CreateSpeechResponseStreamEvent::SpeechAudioDelta(delta) => {
                    assert!(!delta.audio.is_empty());
                    deltas += 1;
                }
                CreateSpeechResponseStreamEvent::SpeechAudioDone(end) => {
                    assert!(end.usage.input_tokens > 0);
                    done = true;
                }
            }
        }
        assert!(deltas > 0 && done, "{deltas} deltas, done {done}");

        let refused = speech
            .create(request(Some(SpeechResponseFormat::Aac)))
            .await
            .expect_err("aac is not served");
        assert!(refused.to_string().contains("aac"), "{refused}");
    });
}

/// The default voice with its noise scales set to 0 in a copy of its
/// `.onnx.json` (the `.onnx` linked): its audio depends only on the text.
fn quiet_default_voice(dir: &std::path::Path) -> PathBuf {
    let onnx = dir.join("quiet.onnx");
    std::os::unix::fs::symlink(default_voice(), &onnx).expect("link the voice");
    let json_path = PathBuf::from(format!("{}.json", default_voice().display()));
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).expect("voice JSON"))
            .expect("parse voice JSON");
    config["inference"]["noise_scale"] = 0.0.into();
    config["inference"]["noise_w"] = 0.0.into();
    std::fs::write(dir.join("quiet.onnx.json"), config.to_string()).expect("write JSON");
    onnx
}

/// Sends `texts` at once and returns each reply's PCM samples.
fn concurrent_pcm(server: &Server, texts: &[&str]) -> Vec<Vec<i16>> {
    let clients: Vec<_> = texts
        .iter()
        .map(|text| {
            let url = server.url("/v1/audio/speech");
            let body = serde_json::json!({ "input": text, "response_format": "pcm" }).to_string();
            std::thread::spawn(move || {
                agent()
                    .post(&url)
                    .content_type("application/json")
                    .send(body)
                    .map(Reply::read)
                    .expect("send")
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| {
            let reply = c.join().expect("client");
            assert_eq!(reply.status, 200);
            reply
                .body
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect()
        })
        .collect()
}

#[test]
fn sentences_of_concurrent_requests_share_batches_and_sound_as_alone() {
    let dir = scratch();
    let voice = quiet_default_voice(dir.path());
    let voice = voice.to_str().expect("path");
    let texts = [
        "Hello there.",
        "A second request.",
        "And a third one, a little longer.",
    ];
    // One worker on `voice`, up to `batch` sentences per model call.
    let one_worker = |batch: &str, extra: &[&str]| {
        let mut args = vec![
            "--voice",
            voice,
            "--no-embeddings",
            "--workers",
            "1",
            "--batch-size",
            batch,
        ];
        args.extend_from_slice(extra);
        Server::start(&args, &[])
    };
    // Batching up to 3 sentences (what an accelerator's plan does), waiting
    // up to 2 s for company: the batch fills as soon as the three requests
    // are in.
    let batched = {
        let server = one_worker("3", &["--batch-wait-ms", "2000"]);
        let audio = concurrent_pcm(&server, &texts);
        let calls = server.metric("vivace_batch_size_count");
        let sentences = server.metric("vivace_batch_size_sum");
        assert_eq!(sentences, 3.0);
        assert!(
            calls < 3.0,
            "no batch formed: {calls} model calls for 3 sentences"
        );
        audio
    };
    // Each alone, one sentence per model call.
    let server = one_worker("1", &[]);
    let float = |pcm: &[i16]| pcm.iter().map(|&v| f32::from(v)).collect::<Vec<f32>>();
    for (text, batched) in texts.iter().zip(&batched) {
        let alone = &concurrent_pcm(&server, &[text])[0];
        // Same length: the audio was not swapped or cut inside the batch;
        // equal up to the float rounding of a padded batch.
        assert_eq!(batched.len(), alone.len(), "{text:?}: length");
        let err = crate::util::relative_l2(&float(batched), &float(alone));
        assert!(
            err < 1e-3,
            "{text:?}: batched differs from alone by {err:.2e}"
        );
    }
}

#[test]
fn a_seed_gives_the_same_audio_for_the_same_input() {
    let server = Server::start(&["--no-embeddings"], &[]);
    let body = serde_json::json!({ "input": "Hello there.", "response_format": "pcm", "seed": 11 });
    let first = server.speech(&body);
    let second = server.speech(&body);
    assert_eq!(first.status, 200);
    assert!(!first.body.is_empty());
    assert_eq!(
        first.body, second.body,
        "the same seed gave different audio"
    );
    let other = server.speech(&serde_json::json!({
        "input": "Hello there.", "response_format": "pcm", "seed": 12
    }));
    assert_ne!(other.body, first.body, "another seed gave the same audio");
}

#[test]
fn a_multilingual_voice_speaks_the_requested_language() {
    // Chatterbox's 23-language model (small random weights) behind the
    // service: `language` picks the language; one it does not speak is a
    // 400 that lists them; a one-language voice ignores the field.
    let voice = crate::util::multilingual_chatterbox();
    let path = voice.path().to_str().expect("a UTF-8 path");
    let server = Server::start(&["--no-embeddings", "--voice", path], &[]);
    let ok = server.speech(&serde_json::json!({
        "model": "tts-1",
        "input": "Bonjour.",
        "language": "fr",
        "response_format": "pcm",
        "seed": 1,
        "exaggeration": 0.7,
    }));
    assert_eq!(ok.status, 200, "{}", server.log());
    assert!(!ok.body.is_empty(), "no audio");
    assert_eq!(
        ok.header("x-ignored-fields"),
        "",
        "Chatterbox takes exaggeration"
    );
    server
        .speech(&serde_json::json!({ "input": "Bonjour.", "exaggeration": 5.0 }))
        .assert_error(400, "invalid_exaggeration");
    let bad = server.speech(&serde_json::json!({
        "model": "tts-1",
        "input": "Hallo.",
        "language": "xx",
    }));
    assert_eq!(bad.status, 400);
    let text = String::from_utf8_lossy(&bad.body);
    assert!(
        text.contains("unsupported_language") && text.contains("zh"),
        "{text}"
    );
    drop(server);
    let piper = Server::start(&["--no-embeddings"], &[]);
    let ok = piper.speech(&serde_json::json!({
        "input": "Hello.",
        "language": "de",
        "response_format": "pcm",
    }));
    assert_eq!(ok.status, 200, "{}", piper.log());
}

/// Uploads `wav` as a cloned voice called `name` (multipart as OpenAI's SDK
/// sends it).
/// A 16-bit WAV file's samples.
fn wav_i16(path: &std::path::Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .expect("a WAV")
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// The largest difference between two renders, in 16-bit steps.
fn worst_lsb(a: &[i16], b: &[i16]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
        .max()
        .unwrap_or(0)
}

fn upload_voice(server: &Server, fields: &[(&str, &str)], wav: Option<&[u8]>) -> Reply {
    let (content_type, body) = multipart_form(fields, wav.map(|w| ("audio_sample", "me.wav", w)));
    agent()
        .post(&server.url("/v1/audio/voices"))
        .content_type(&content_type)
        .send(&body[..])
        .map(Reply::read)
        .expect("send")
}

#[test]
fn a_cloned_voice_is_uploaded_spoken_kept_across_restarts_and_deleted() {
    // A small English Chatterbox that clones (random weights), its cloned
    // voices in a scratch folder. The voice cloned over HTTP must speak as
    // `vivace say --reference` does with the same recording and seed, both
    // from the conditioning kept at upload and from the one recomputed from
    // disk after a restart.
    let voice = crate::util::cloning_chatterbox();
    let store = scratch();
    let args = [
        "--no-embeddings",
        "--voice",
        voice.path().to_str().expect("a UTF-8 path"),
        "--cloned-voices",
        store.path().to_str().expect("a UTF-8 path"),
    ];
    let recording_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vivace-models/tests/fixtures/voice_encoder/speech_16k_a.wav");
    let wav = std::fs::read(&recording_path).expect("fixture");
    let server = Server::start(&args, &[]);

    let created = upload_voice(
        &server,
        &[("name", "Ana's voice"), ("consent", "cons_1234")],
        Some(&wav),
    );
    assert_eq!(created.status, 200, "{}", server.log());
    let created = created.json();
    let id = created["id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("voice_"), "{created}");
    assert_eq!(created["object"], "audio.voice");
    assert_eq!(created["name"], "Ana's voice");

    let listed = agent()
        .get(&server.url("/v1/audio/voices"))
        .call()
        .map(Reply::read)
        .expect("list");
    let voices = listed.json()["voices"].as_array().expect("voices").clone();
    assert!(
        voices
            .iter()
            .any(|v| v["id"] == id.as_str() && v["type"] == "audio_sample"),
        "{voices:?}"
    );
    assert!(
        voices
            .iter()
            .any(|v| v["type"] == "served" && v["clones"] == true),
        "{voices:?}"
    );

    let speak = |server: &Server, voice: serde_json::Value| {
        let reply = server.speech(&serde_json::json!({
            "model": "tts-1",
            "input": "Hello there.",
            "voice": voice,
            "response_format": "pcm",
            "seed": 7,
        }));
        assert_eq!(reply.status, 200, "{}", server.log());
        reply.body
    };
    let by_id = speak(&server, serde_json::json!({ "id": id }));
    assert!(!by_id.is_empty(), "no audio");
    assert_eq!(
        speak(&server, serde_json::json!(id)),
        by_id,
        "the id as a string"
    );
    assert_eq!(
        speak(&server, serde_json::json!("Ana's voice")),
        by_id,
        "the name"
    );

    // The same recording through the command line: the same audio.
    let out = scratch();
    let said = crate::util::vivace()
        .args(["say", "--voice"])
        .arg(voice.path())
        .arg("--reference")
        .arg(&recording_path)
        .args(["--seed", "7", "--device", "cpu", "Hello there.", "-f"])
        .arg(out.path().join("said.wav"))
        .output()
        .expect("vivace say runs");
    assert!(said.status.success(), "{}", crate::util::stderr(&said));
    let said = wav_i16(&out.path().join("said.wav"));
    let served: Vec<i16> = by_id
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(
        said.len(),
        served.len(),
        "the same length as `say --reference`"
    );
    let worst = worst_lsb(&said, &served);
    assert!(worst <= 1, "differs from `say --reference` by {worst} LSB");

    // Kept on disk: a restarted server recomputes the conditioning from the
    // stored recording and speaks the same.
    drop(server);
    let server = Server::start(&args, &[]);
    assert_eq!(speak(&server, serde_json::json!({ "id": id })), by_id);

    // Deleted: gone from the list and from disk, and unknown afterwards.
    let delete = |server: &Server, id: &str| {
        agent()
            .delete(&server.url(&format!("/v1/audio/voices/{id}")))
            .call()
            .map(Reply::read)
            .expect("delete")
    };
    let deleted = delete(&server, &id);
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["deleted"], true);
    delete(&server, &id).assert_error(404, "voice_not_found");
    delete(&server, "..%2F..%2Fetc").assert_error(404, "voice_not_found");
    let gone = server.speech(&serde_json::json!({ "input": "Hi.", "voice": { "id": id } }));
    gone.assert_error(404, "voice_not_found");
    assert_eq!(
        std::fs::read_dir(store.path()).expect("list").count(),
        0,
        "the voice's folder is removed"
    );

    // Uploads that cannot make a voice.
    upload_voice(&server, &[("name", "x")], None).assert_error(400, "missing_file");
    upload_voice(&server, &[], Some(&wav)).assert_error(400, "invalid_name");
    upload_voice(&server, &[("name", "x"), ("type", "prompt")], Some(&wav))
        .assert_error(400, "unsupported_voice_type");
    upload_voice(&server, &[("name", "x")], Some(b"not a WAV")).assert_error(400, "invalid_audio");
    let silence = {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut cursor, spec).expect("writer");
        for _ in 0..32_000 {
            w.write_sample(0i16).expect("sample");
        }
        w.finalize().expect("finalize");
        cursor.into_inner()
    };
    upload_voice(&server, &[("name", "x")], Some(&silence)).assert_error(400, "invalid_audio");
    drop(server);

    // A server whose voices cannot clone says so.
    let piper = Server::start(&["--no-embeddings", "--cloned-voices", args[4]], &[]);
    upload_voice(&piper, &[("name", "x")], Some(&wav)).assert_error(400, "voice_cannot_clone");
    let models = agent()
        .get(&piper.url("/v1/models"))
        .call()
        .map(Reply::read)
        .expect("models");
    assert!(
        models.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|m| m["id"] == "tts-1"),
        "{}",
        models.json()
    );
}

#[test]
fn a_piper_voice_clones_an_upload_through_the_tone_colour_converter() {
    // The default Piper voice served with OpenVoice's converter (the
    // random-weight fixture): an uploaded voice is spoken as `vivace say
    // --clone` speaks it with the same recording and seed.
    let converter = crate::util::fixtures().join("openvoice");
    let store = scratch();
    let args = [
        "--no-embeddings",
        "--no-vad",
        "--converter",
        converter.to_str().expect("a UTF-8 path"),
        "--cloned-voices",
        store.path().to_str().expect("a UTF-8 path"),
    ];
    let recording = converter.join("reference.wav");
    let server = Server::start(&args, &[]);
    let listed = agent()
        .get(&server.url("/v1/audio/voices"))
        .call()
        .map(Reply::read)
        .expect("list");
    assert!(
        listed.json()["voices"]
            .as_array()
            .expect("voices")
            .iter()
            .any(|v| v["type"] == "served" && v["clones"] == true),
        "{}",
        listed.json()
    );
    let created = upload_voice(
        &server,
        &[("name", "Tone")],
        Some(&std::fs::read(&recording).expect("fixture")),
    );
    assert_eq!(created.status, 200, "{}", server.log());
    let id = created.json()["id"].as_str().expect("an id").to_string();
    let speak = |voice: serde_json::Value| {
        let reply = server.speech(&serde_json::json!({
            "input": "Hello there. A second sentence.",
            "voice": voice,
            "response_format": "pcm",
            "sample_rate": 22050,
            "seed": 7,
        }));
        assert_eq!(reply.status, 200, "{}", server.log());
        reply
            .body
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect::<Vec<i16>>()
    };
    let cloned = speak(serde_json::json!({ "id": id }));
    let plain = speak(serde_json::json!("en_US-joe-medium"));
    assert_ne!(cloned, plain, "the cloned voice is re-voiced");

    let out = scratch();
    let said = crate::util::vivace()
        .args(["say", "--voice"])
        .arg(default_voice())
        .args(["--no-vad", "--converter"])
        .arg(&converter)
        .arg("--clone")
        .arg(&recording)
        .args([
            "--seed",
            "7",
            "--device",
            "cpu",
            "Hello there. A second sentence.",
            "-f",
        ])
        .arg(out.path().join("said.wav"))
        .output()
        .expect("vivace say runs");
    assert!(said.status.success(), "{}", crate::util::stderr(&said));
    let said = wav_i16(&out.path().join("said.wav"));
    assert_eq!(said.len(), cloned.len(), "the same length as `say --clone`");
    let worst = worst_lsb(&said, &cloned);
    assert!(worst <= 1, "differs from `say --clone` by {worst} LSB");
}

/// A Kokoro voice served beside the default Piper voice: each answers at
/// its own rate (WAV at 24 kHz for Kokoro), both are listed, a voice
/// alias can name Kokoro, and a speed Kokoro refuses is the client's 400.
#[test]
fn kokoro_is_served_beside_piper() {
    let server = Server::start(
        &[
            "--no-embeddings",
            "--voice",
            "en_US-joe-medium",
            "--voice",
            "kokoro:af_heart",
            "--voice-alias",
            "nova=kokoro:af_heart",
        ],
        &[],
    );
    for (voice, rate) in [
        ("en_US-joe-medium", 22_050),
        ("kokoro:af_heart", 24_000),
        ("nova", 24_000),
    ] {
        let reply = server.speech(&serde_json::json!({
            "model": "tts-1", "voice": voice, "input": "Hello there.", "response_format": "wav"
        }));
        assert_eq!(reply.status, 200, "{voice}: {}", server.log());
        let (spec, samples) = decode_streamed_wav(&reply.body);
        assert_eq!(spec.sample_rate, rate, "{voice}");
        assert!(
            samples.len() > rate as usize / 4,
            "{voice}: {} samples",
            samples.len()
        );
    }
    let listed = agent()
        .get(&server.url("/v1/voices"))
        .call()
        .map(Reply::read)
        .expect("list")
        .json();
    let kokoro = listed["data"]
        .as_array()
        .expect("voices")
        .iter()
        .find(|v| v["id"] == "kokoro:af_heart")
        .unwrap_or_else(|| panic!("kokoro:af_heart in {listed}"))
        .clone();
    assert_eq!(kokoro["format"], "kokoro");
    assert_eq!(kokoro["language"], "en-us");
    server
        .speech(&serde_json::json!({"voice": "kokoro:af_heart", "input": "Hi.", "speed": 3.0}))
        .assert_error(400, "invalid_params");
}

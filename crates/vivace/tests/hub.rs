//! `vivace download hf:…` against a local HTTP server that answers as the
//! Hugging Face Hub does (the real Hub cannot be reached here): `GET
//! /OWNER/NAME/resolve/REVISION/FILE` with `Range`, answered 206 with
//! `X-Repo-Commit`, `ETag` (a Git hash for small files, `X-Linked-Etag`
//! with the sha256 for LFS files) and `Content-Range`; 404 for a file
//! that is not there.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::util::{fixtures, scratch, stderr, vivace};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// How the fake Hub misbehaves.
#[derive(Default, Clone)]
struct Faults {
    /// Cut the first full transfer of this file half way.
    truncate_once: Option<String>,
    /// Serve this file with a byte flipped (its ETag stays the true sha256).
    corrupt: Option<String>,
}

/// Each request's path and `Range` header, in order.
type RequestLog = Mutex<Vec<(String, Option<String>)>>;

/// A fake Hub serving one repo's files; records each request's path and Range.
struct FakeHub {
    url: String,
    requests: Arc<RequestLog>,
}

impl FakeHub {
    fn start(repo: &str, files: BTreeMap<String, Vec<u8>>, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new((faults, false)));
        let (log, prefix) = (Arc::clone(&requests), format!("/{repo}/resolve/"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, files, state, prefix) = (
                    Arc::clone(&log),
                    files.clone(),
                    Arc::clone(&state),
                    prefix.clone(),
                );
                std::thread::spawn(move || serve(stream, &prefix, &files, &state, &log));
            }
        });
        Self { url, requests }
    }

    fn ranges_of(&self, file: &str) -> Vec<Option<String>> {
        let requests = self.requests.lock().expect("log");
        requests
            .iter()
            .filter(|(path, _)| path.ends_with(&format!("/{file}")))
            .map(|(_, range)| range.clone())
            .collect()
    }
}

/// Answers the requests of one connection.
fn serve(
    stream: TcpStream,
    prefix: &str,
    files: &BTreeMap<String, Vec<u8>>,
    state: &Mutex<(Faults, bool)>,
    log: &RequestLog,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut range = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("range") {
                    range = Some(value.trim().to_string());
                }
            }
        }
        log.lock().expect("log").push((path.clone(), range.clone()));
        // `main` and the commit both resolve.
        let file = path.strip_prefix(prefix).and_then(|rest| {
            rest.strip_prefix("main/")
                .or_else(|| rest.strip_prefix(&format!("{COMMIT}/")))
        });
        let Some(content) = file.and_then(|f| files.get(f)) else {
            let body = "Entry not found";
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\nX-Error-Code: EntryNotFound\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            continue;
        };
        let file = file.unwrap_or_default();
        let sha256 = hex::encode(Sha256::digest(content));
        let lfs = file.ends_with(".safetensors");
        let mut body = content.clone();
        let (faults, truncated) = &mut *state.lock().expect("state");
        if faults.corrupt.as_deref() == Some(file) {
            body[0] ^= 0xff;
        }
        let start: usize = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split('-').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let end = match range.as_deref() {
            Some("bytes=0-0") => 0,
            _ => body.len() - 1,
        };
        let part = &body[start.min(body.len())..=end.min(body.len() - 1)];
        let etag = match lfs {
            true => format!(
                "X-Linked-Etag: \"{sha256}\"\r\nETag: \"git-{}\"",
                &sha256[..8]
            ),
            false => format!("ETag: \"{}\"", &sha256[..40]),
        };
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nX-Repo-Commit: {COMMIT}\r\n{etag}\r\nContent-Range: bytes {start}-{end}/{}\r\nContent-Length: {}\r\n\r\n",
            body.len(),
            part.len()
        );
        let _ = out.write_all(head.as_bytes());
        let cut = faults.truncate_once.as_deref() == Some(file)
            && !*truncated
            && start == 0
            && part.len() > 1;
        if cut {
            *truncated = true;
            let _ = out.write_all(&part[..part.len() / 2]);
            let _ = out.flush();
            return; // the connection drops mid-body
        }
        let _ = out.write_all(part);
        let _ = out.flush();
    }
}

/// The tiny MMS checkpoint of the fixtures, as a repo's files.
fn tiny_checkpoint() -> BTreeMap<String, Vec<u8>> {
    let dir = fixtures().join("mms/tiny-sdp");
    [
        "config.json",
        "vocab.json",
        "tokenizer_config.json",
        "added_tokens.json",
        "model.safetensors",
    ]
    .iter()
    .map(|f| {
        let bytes = std::fs::read(dir.join(f)).expect("fixture");
        (f.to_string(), bytes)
    })
    .collect()
}

fn download(cache: &Path, hub: &FakeHub, args: &[&str]) -> std::process::Output {
    vivace()
        .env("XDG_CACHE_HOME", cache)
        .env("HF_ENDPOINT", &hub.url)
        .env_remove("HF_TOKEN")
        .arg("download")
        .args(args)
        .output()
        .expect("run vivace download")
}

#[test]
fn a_hub_checkpoint_downloads_resumes_a_broken_transfer_and_speaks() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let files = tiny_checkpoint();
    let weights = files["model.safetensors"].clone();
    let hub = FakeHub::start(
        "facebook/mms-tts-tiny",
        files,
        Faults {
            truncate_once: Some("model.safetensors".into()),
            ..Faults::default()
        },
    );
    let o = download(&cache, &hub, &["hf:facebook/mms-tts-tiny"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The broken transfer was resumed from where it stopped, not restarted.
    let ranges = hub.ranges_of("model.safetensors");
    let half = (weights.len() / 2).to_string();
    assert!(
        ranges.contains(&Some(format!("bytes={half}-"))),
        "no resumed request: {ranges:?}"
    );
    // The optional file the repo lacks was asked for, and its absence is fine.
    assert_eq!(hub.ranges_of("special_tokens_map.json").len(), 1);

    // Installed with a manifest of sha256s, linked from the Hub cache.
    let voice = cache.join("vivace/voices/mms-tts-tiny");
    let installed = std::fs::read(voice.join("model.safetensors")).expect("weights");
    assert_eq!(installed, weights);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(voice.join("vivace-source.json")).expect("manifest"),
    )
    .expect("JSON");
    assert_eq!(
        manifest["origin"],
        format!("hf:facebook/mms-tts-tiny@{COMMIT}")
    );
    assert_eq!(
        manifest["files"]["model.safetensors"]["sha256"],
        hex::encode(Sha256::digest(&weights))
    );
    assert!(manifest["files"].get("special_tokens_map.json").is_none());
    assert!(cache
        .join("vivace/hub/models--facebook--mms-tts-tiny/snapshots")
        .join(COMMIT)
        .join("config.json")
        .exists());

    // A second download finds the commit's files in the cache: only the
    // metadata is asked again.
    let transfers = |hub: &FakeHub| {
        hub.ranges_of("model.safetensors")
            .iter()
            .filter(|r| r.as_deref() != Some("bytes=0-0"))
            .count()
    };
    let before = transfers(&hub);
    let o = download(&cache, &hub, &["hf:facebook/mms-tts-tiny"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(transfers(&hub), before, "the weights were fetched again");

    // Listed with its source, and it speaks.
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .args(["voices", "--json"])
        .output()
        .expect("voices");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(list[0]["name"], "mms-tts-tiny");
    assert_eq!(
        list[0]["source"],
        format!("hf:facebook/mms-tts-tiny@{COMMIT}")
    );
    let out = dir.path().join("hub.wav");
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .args(["say", "Hi there.", "--voice", "mms-tts-tiny", "-f"])
        .arg(&out)
        .output()
        .expect("say");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.is_file());
}

#[test]
fn a_corrupt_hub_file_is_deleted_and_nothing_is_installed() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let hub = FakeHub::start(
        "facebook/mms-tts-tiny",
        tiny_checkpoint(),
        Faults {
            corrupt: Some("model.safetensors".into()),
            ..Faults::default()
        },
    );
    let o = download(&cache, &hub, &["hf:facebook/mms-tts-tiny"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("model.safetensors") && err.contains("sha256"),
        "{err}"
    );
    assert!(!cache.join("vivace/voices/mms-tts-tiny").exists());
    let blobs = cache.join("vivace/hub/models--facebook--mms-tts-tiny/blobs");
    let left: Vec<_> = std::fs::read_dir(&blobs)
        .expect("blobs")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().len() == 64)
        .collect();
    assert!(left.is_empty(), "the corrupt blob was kept: {left:?}");
}

#[test]
fn hub_names_and_missing_files_are_clear_errors() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let mut files = tiny_checkpoint();
    files.remove("vocab.json");
    let hub = FakeHub::start("facebook/mms-tts-tiny", files, Faults::default());
    let o = download(&cache, &hub, &["hf:facebook/mms-tts-tiny"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("has no vocab.json"), "{err}");
    assert!(!cache.join("vivace/voices/mms-tts-tiny").exists());

    let o = download(&cache, &hub, &["hf:no-slash"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("hf:OWNER/NAME"), "{}", stderr(&o));

    let o = download(
        &cache,
        &hub,
        &["hf:facebook/mms-tts-tiny", "--family", "nope"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("use one of chatterbox, kokoro, vits"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_local_voice_is_copied_in_with_its_manifest() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let onnx = fixtures().join("voices/tiny-single-rb2-dp.onnx");
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .arg("download")
        .arg(&onnx)
        .args(["--name", "tiny-local"])
        .output()
        .expect("download");
    assert!(o.status.success(), "{}", stderr(&o));
    let voice = cache.join("vivace/voices/tiny-local");
    assert!(voice.join("tiny-local.onnx").is_file());
    assert!(voice.join("tiny-local.onnx.json").is_file());
    let manifest = std::fs::read_to_string(voice.join("vivace-source.json")).expect("manifest");
    let mut bytes = Vec::new();
    std::fs::File::open(&onnx)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .expect("read");
    assert!(manifest.contains(&hex::encode(Sha256::digest(&bytes))));
}

#[test]
fn a_local_compact_voice_is_installed_under_its_own_name() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let compact = dir.path().join("tiny.safetensors");
    let o = vivace()
        .arg("convert")
        .arg(fixtures().join("voices/tiny-single-rb2-dp.onnx"))
        .args(["--no-check", "-o"])
        .arg(&compact)
        .output()
        .expect("convert");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .arg("download")
        .arg(&compact)
        .output()
        .expect("download");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(cache.join("vivace/voices/tiny/tiny.safetensors").is_file());
    let out = dir.path().join("tiny.wav");
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .args(["say", "Hi.", "--voice", "tiny", "-f"])
        .arg(&out)
        .output()
        .expect("say");
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_transfer_broken_in_an_earlier_run_resumes_where_it_stopped() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let files = tiny_checkpoint();
    let weights = files["model.safetensors"].clone();
    let half = weights.len() / 2;
    // What an interrupted run leaves: the first half in the blob's part file.
    let blobs = cache.join("vivace/hub/models--facebook--mms-tts-tiny/blobs");
    std::fs::create_dir_all(&blobs).expect("blobs");
    let sha256 = hex::encode(Sha256::digest(&weights));
    std::fs::write(blobs.join(format!("{sha256}.part")), &weights[..half]).expect("part");
    let hub = FakeHub::start("facebook/mms-tts-tiny", files, Faults::default());
    let o = download(&cache, &hub, &["hf:facebook/mms-tts-tiny"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ranges = hub.ranges_of("model.safetensors");
    assert!(
        ranges.contains(&Some(format!("bytes={half}-"))),
        "{ranges:?}"
    );
    assert!(
        !ranges.contains(&Some("bytes=0-".into())),
        "restarted: {ranges:?}"
    );
    let installed = cache.join("vivace/voices/mms-tts-tiny/model.safetensors");
    assert_eq!(std::fs::read(installed).expect("weights"), weights);
}

#[test]
fn chatterbox_downloads_by_name_and_says_what_to_do_without_the_hub() {
    let dir = scratch();
    let cache = dir.path().join("cache");
    let t3 = fixtures().join("../../../vivace-models/tests/fixtures/t3");
    let mut files: BTreeMap<String, Vec<u8>> = [
        "t3_cfg.safetensors",
        "s3gen.safetensors",
        "tokenizer.json",
        "conds.pt",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(t3.join(f)).expect("fixture")))
    .collect();
    files.insert(
        "ve.safetensors".into(),
        std::fs::read(fixtures().join("chatterbox_ve/ve.safetensors")).expect("fixture"),
    );
    let hub = FakeHub::start("ResembleAI/chatterbox", files, Faults::default());
    let o = download(&cache, &hub, &["chatterbox"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let installed = cache.join("vivace/voices/chatterbox");
    for f in [
        "t3_cfg.safetensors",
        "s3gen.safetensors",
        "tokenizer.json",
        "ve.safetensors",
        "conds.pt",
    ] {
        assert!(
            installed.join(f).is_file(),
            "{f} installed under its published name"
        );
    }
    // No Hub: the error says where the files come from and what to do.
    let o = vivace()
        .env("XDG_CACHE_HOME", dir.path().join("other"))
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["download", "chatterbox-turbo"])
        .output()
        .expect("run vivace download");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("t3_turbo_v1.safetensors")
            && err.contains("https://huggingface.co/ResembleAI/chatterbox-turbo")
            && err.contains("--voice FOLDER"),
        "{err}"
    );
}

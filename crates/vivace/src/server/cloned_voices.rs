//! Cloned voices: reference recordings uploaded through
//! `POST /v1/audio/voices`, kept on disk so they survive restarts, each
//! spoken by the served voice that cloned it.
//!
//! One folder per voice under the store's directory, named by its id
//! (`voice_` and 16 hex digits, made here, never taken from a request):
//! `voice.json` (what [`ClonedVoiceInfo`] says) and `sample.wav` (the
//! decoded recording, mono 32-bit float, so nothing is lost). A voice is
//! written into a temporary folder and renamed into place, so a crash leaves
//! no half voice. The conditioning a family computes from the recording is
//! kept in memory: computed at upload, or at the first request after a
//! restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::family::ClonedSpeaker;

/// What every cloned voice's id starts with (OpenAI's custom voices look
/// the same: `voice_1234`).
pub const ID_PREFIX: &str = "voice_";
/// The voice's description in its folder.
const INFO_FILE: &str = "voice.json";
/// The recording in its folder.
const SAMPLE_FILE: &str = "sample.wav";
/// Hex digits after [`ID_PREFIX`].
const ID_DIGITS: usize = 16;

/// A cloned voice as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClonedVoiceInfo {
    /// `voice_` and 16 hex digits: what requests name it by.
    pub id: String,
    /// The name given at upload (any text; never a path).
    pub name: String,
    /// Unix time of the upload, in seconds.
    pub created_at: u64,
    /// The served voice that clones it and speaks with it.
    pub base_voice: String,
    /// The `consent` field given at upload (OpenAI's consent recording id),
    /// kept as given.
    pub consent: Option<String>,
    /// Length of the recording, in seconds.
    pub seconds: f64,
    /// Its sample rate, in Hz.
    pub sample_rate: u32,
}

/// Why a cloned voice could not be stored, found or read.
#[derive(Debug, thiserror::Error)]
pub enum ClonedVoiceError {
    /// No voice has that id or name.
    #[error("no cloned voice {0:?} here: GET /v1/audio/voices lists the voices")]
    NotFound(String),
    /// The store is at its size limit.
    #[error("the cloned voices use {used} of the {limit} bytes this server keeps for them, and this one needs {needed}: delete voices (DELETE /v1/audio/voices/ID) or start the server with a larger --max-cloned-voices-mib")]
    Full {
        /// Bytes in use.
        used: u64,
        /// The limit.
        limit: u64,
        /// What the new voice needs.
        needed: u64,
    },
    /// A file could not be written or read.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A stored recording could not be read back.
    #[error("the recording of cloned voice {id} is unreadable ({reason}): delete the voice and upload it again")]
    Corrupt {
        /// The voice.
        id: String,
        /// Why.
        reason: String,
    },
}

struct Entry {
    info: ClonedVoiceInfo,
    bytes: u64,
    speaker: Option<ClonedSpeaker>,
}

/// The cloned voices of one server: on disk in one directory, listed and
/// cached in memory.
pub struct ClonedVoices {
    dir: PathBuf,
    max_bytes: u64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ClonedVoices {
    /// Opens (creating it if needed) the store in `dir`, holding at most
    /// `max_bytes`. Folders that are not a readable voice are skipped with
    /// a warning, never deleted.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, ClonedVoiceError> {
        std::fs::create_dir_all(dir).map_err(|source| ClonedVoiceError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let listing = std::fs::read_dir(dir).map_err(|source| ClonedVoiceError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut entries = HashMap::new();
        for item in listing.flatten() {
            let folder = item.path();
            let Some(id) = folder.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !is_id(id) {
                continue; // temporary folders of an interrupted upload, or foreign files
            }
            match read_entry(&folder, id) {
                Ok(entry) => {
                    entries.insert(id.to_string(), entry);
                }
                Err(reason) => {
                    tracing::warn!("skipping cloned voice {}: {reason}", folder.display());
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: Mutex::new(entries),
        })
    }

    /// Every voice, oldest first.
    pub fn list(&self) -> Vec<ClonedVoiceInfo> {
        let mut all: Vec<ClonedVoiceInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// The voice whose id is `key`, or else the newest one named `key`.
    pub fn find(&self, key: &str) -> Option<ClonedVoiceInfo> {
        let entries = self.lock();
        if let Some(entry) = entries.get(key) {
            return Some(entry.info.clone());
        }
        entries
            .values()
            .filter(|e| e.info.name == key)
            .max_by(|a, b| (a.info.created_at, &a.info.id).cmp(&(b.info.created_at, &b.info.id)))
            .map(|e| e.info.clone())
    }

    /// The conditioning of voice `id`, when it has been computed.
    pub fn speaker(&self, id: &str) -> Option<ClonedSpeaker> {
        self.lock().get(id).and_then(|e| e.speaker.clone())
    }

    /// Keeps the conditioning of voice `id` (computed after a restart).
    pub fn remember(&self, id: &str, speaker: ClonedSpeaker) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.speaker = Some(speaker);
        }
    }

    /// The recording of voice `id`: mono samples and their rate.
    pub fn recording(&self, id: &str) -> Result<(Vec<f32>, u32), ClonedVoiceError> {
        if !self.lock().contains_key(id) {
            return Err(ClonedVoiceError::NotFound(id.to_string()));
        }
        let path = self.dir.join(id).join(SAMPLE_FILE);
        let corrupt = |reason: String| ClonedVoiceError::Corrupt {
            id: id.to_string(),
            reason,
        };
        let mut reader = hound::WavReader::open(&path).map_err(|e| corrupt(e.to_string()))?;
        let rate = reader.spec().sample_rate;
        let samples = reader
            .samples::<f32>()
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok((samples, rate))
    }

    /// Stores a new voice: its recording (mono, at `sample_rate`), its
    /// description and its conditioning. The id is made here.
    pub fn add(
        &self,
        name: &str,
        base_voice: &str,
        consent: Option<String>,
        samples: &[f32],
        sample_rate: u32,
        speaker: ClonedSpeaker,
    ) -> Result<ClonedVoiceInfo, ClonedVoiceError> {
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = new_id(name, samples);
        let info = ClonedVoiceInfo {
            id: id.clone(),
            name: name.to_string(),
            created_at,
            base_voice: base_voice.to_string(),
            consent,
            seconds: samples.len() as f64 / f64::from(sample_rate.max(1)),
            sample_rate,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| ClonedVoiceError::Io {
            action: "describe",
            path: self.dir.join(&id).join(INFO_FILE),
            source: std::io::Error::other(e),
        })?;
        // A 32-bit float WAV: 44 header bytes and 4 per sample.
        let needed = 44 + 4 * samples.len() as u64 + json.len() as u64;
        // Held through the write, so two uploads cannot both pass the limit.
        let mut entries = self.lock();
        let used: u64 = entries.values().map(|e| e.bytes).sum();
        if used + needed > self.max_bytes {
            return Err(ClonedVoiceError::Full {
                used,
                limit: self.max_bytes,
                needed,
            });
        }
        let staging = self.dir.join(format!(".upload-{id}"));
        let written = write_voice(&staging, &json, samples, sample_rate).and_then(|()| {
            std::fs::rename(&staging, self.dir.join(&id)).map_err(|source| ClonedVoiceError::Io {
                action: "move into place",
                path: staging.clone(),
                source,
            })
        });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        entries.insert(
            id,
            Entry {
                info: info.clone(),
                bytes: needed,
                speaker: Some(speaker),
            },
        );
        Ok(info)
    }

    /// Deletes voice `id` from disk and memory; requests already speaking
    /// with it finish.
    pub fn remove(&self, id: &str) -> Result<ClonedVoiceInfo, ClonedVoiceError> {
        let mut entries = self.lock();
        let Some(entry) = entries.get(id) else {
            return Err(ClonedVoiceError::NotFound(id.to_string()));
        };
        // The key came from a folder name or from `new_id`, never from the
        // request, and is checked again before it becomes a path.
        debug_assert!(is_id(&entry.info.id));
        let folder = self.dir.join(&entry.info.id);
        std::fs::remove_dir_all(&folder).map_err(|source| ClonedVoiceError::Io {
            action: "delete",
            path: folder,
            source,
        })?;
        entries
            .remove(id)
            .map(|e| e.info)
            .ok_or_else(|| ClonedVoiceError::NotFound(id.to_string()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `s` is an id this store makes: `voice_` and 16 lowercase hex
/// digits (so it is a plain folder name, never a path).
pub fn is_id(s: &str) -> bool {
    s.strip_prefix(ID_PREFIX).is_some_and(|hex| {
        hex.len() == ID_DIGITS && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A fresh id: a hash of the time, the process, a counter, the name and the
/// recording, so two uploads never share one.
fn new_id(name: &str, samples: &[f32]) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hash = Sha256::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hash.update(now.to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(
        COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes(),
    );
    hash.update(name.as_bytes());
    for s in samples.iter().take(4096) {
        hash.update(s.to_le_bytes());
    }
    let digest = hash.finalize();
    format!("{ID_PREFIX}{}", &hex::encode(digest)[..ID_DIGITS])
}

fn write_voice(
    folder: &Path,
    json: &[u8],
    samples: &[f32],
    sample_rate: u32,
) -> Result<(), ClonedVoiceError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| ClonedVoiceError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(folder).map_err(io("create", folder))?;
    let sample_path = folder.join(SAMPLE_FILE);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let wav_error = |e: hound::Error| match e {
        hound::Error::IoError(source) => ClonedVoiceError::Io {
            action: "write",
            path: sample_path.clone(),
            source,
        },
        other => ClonedVoiceError::Io {
            action: "write",
            path: sample_path.clone(),
            source: std::io::Error::other(other.to_string()),
        },
    };
    let mut writer = hound::WavWriter::create(&sample_path, spec).map_err(wav_error)?;
    for &s in samples {
        writer.write_sample(s).map_err(wav_error)?;
    }
    writer.finalize().map_err(wav_error)?;
    let info_path = folder.join(INFO_FILE);
    std::fs::write(&info_path, json).map_err(io("write", &info_path))
}

fn read_entry(folder: &Path, id: &str) -> Result<Entry, String> {
    let text = std::fs::read_to_string(folder.join(INFO_FILE)).map_err(|e| e.to_string())?;
    let info: ClonedVoiceInfo = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if info.id != id {
        return Err(format!("its {INFO_FILE} says id {:?}", info.id));
    }
    let sample = std::fs::metadata(folder.join(SAMPLE_FILE)).map_err(|e| e.to_string())?;
    Ok(Entry {
        info,
        bytes: sample.len() + text.len() as u64,
        speaker: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaker() -> ClonedSpeaker {
        ClonedSpeaker::new(std::sync::Arc::new(7u32))
    }

    #[test]
    fn voices_survive_a_reopen_and_are_found_by_id_or_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ClonedVoices::open(dir.path(), 1 << 20).expect("open");
        let samples: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let first = store
            .add(
                "Ana",
                "cb",
                Some("cons_1".into()),
                &samples,
                16_000,
                speaker(),
            )
            .expect("add");
        assert!(is_id(&first.id), "{}", first.id);
        assert!((first.seconds - 0.1).abs() < 1e-9);
        let again = ClonedVoices::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(again.list(), vec![first.clone()]);
        assert_eq!(again.find(&first.id), Some(first.clone()));
        assert_eq!(again.find("Ana"), Some(first.clone()));
        assert!(
            again.speaker(&first.id).is_none(),
            "conditioning is not on disk"
        );
        let (read, rate) = again.recording(&first.id).expect("recording");
        assert_eq!((read, rate), (samples, 16_000), "stored losslessly");
        again.remove(&first.id).expect("remove");
        assert!(again.find(&first.id).is_none());
        assert!(ClonedVoices::open(dir.path(), 1 << 20)
            .expect("reopen")
            .list()
            .is_empty());
    }

    #[test]
    fn the_size_limit_refuses_a_voice_and_keeps_the_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ClonedVoices::open(dir.path(), 10_000).expect("open");
        let samples = vec![0.1f32; 1500];
        store
            .add("a", "cb", None, &samples, 8000, speaker())
            .expect("the first fits");
        let full = store.add("b", "cb", None, &samples, 8000, speaker());
        assert!(
            matches!(full, Err(ClonedVoiceError::Full { limit: 10_000, .. })),
            "{full:?}"
        );
        assert_eq!(store.list().len(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .filter(|e| !is_id(&e.file_name().to_string_lossy()))
            .collect();
        assert!(leftovers.is_empty(), "no staging folder is left behind");
    }

    #[test]
    fn only_made_ids_are_ids() {
        assert!(is_id("voice_0123456789abcdef"));
        for bad in [
            "voice_0123456789ABCDEF",
            "voice_0123456789abcde",
            "voice_../../etc/passwd1",
            "../voice_0123456789abcdef",
            "alloy",
            "",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("not-a-voice")).expect("mkdir");
        std::fs::create_dir(dir.path().join("voice_0000000000000000")).expect("mkdir");
        let store = ClonedVoices::open(dir.path(), 1 << 20).expect("open");
        assert!(store.list().is_empty(), "a broken voice folder is skipped");
        assert!(matches!(
            store.remove("voice_0000000000000000"),
            Err(ClonedVoiceError::NotFound(_))
        ));
    }
}

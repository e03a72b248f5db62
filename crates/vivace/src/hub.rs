//! The Hugging Face Hub as a voice source, through `hf-hub` (the Hub's own
//! Rust client): a repo, a revision and a file list.
//!
//! Files land in the Hub's cache layout under `$CACHE/vivace/hub`
//! (`models--OWNER--NAME/blobs`, `snapshots/COMMIT/…`). `hf-hub` downloads
//! each into `blobs/ETAG.part`, resumes from there with a `Range`
//! request when a transfer breaks (within a run, and in the next run), and
//! renames it into place when complete, so a file is never half there.
//! Here every file is then hashed: a Git LFS file (the weights) must hash
//! to the sha256 the Hub gave as its ETag, or it is deleted and refused. The
//! hashes go into the voice's manifest ([`crate::voice_store::Manifest`]).
//!
//! `HF_ENDPOINT` replaces `https://huggingface.co` (a mirror, or the tests'
//! local server); `HF_TOKEN` is sent for gated repos.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::voice_store::{sha256_file, StoreError};

/// The Hub's address unless `HF_ENDPOINT` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A file of a checkpoint, and whether a checkpoint without it is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Its path in the repo (a family's list is static, `--file` owned).
    pub name: Cow<'static, str>,
    /// Whether the checkpoint needs it (an optional one may be absent).
    pub required: bool,
}

/// What to fetch: `hf:OWNER/NAME[@REVISION]` and the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRequest {
    /// `OWNER/NAME`.
    pub repo: String,
    /// A branch, tag or commit (`main` by default).
    pub revision: String,
    /// The files, in order.
    pub files: Vec<HubFile>,
}

/// The repo and revision of `hf:OWNER/NAME[@REVISION]` (`main` by default);
/// `None` when `name` is not a Hub name at all.
pub fn parse_hub_name(name: &str) -> Option<Result<(String, String), HubError>> {
    let rest = name.strip_prefix("hf:")?;
    let (repo, revision) = match rest.split_once('@') {
        Some((repo, revision)) => (repo, revision),
        None => (rest, "main"),
    };
    let valid_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let repo_ok = matches!(repo.split_once('/'), Some((o, n)) if valid_part(o) && valid_part(n));
    // Branches may hold slashes (`refs/pr/1`); each part must be plain.
    let revision_ok = revision.split('/').all(valid_part);
    let ok = repo_ok && revision_ok;
    Some(match ok {
        true => Ok((repo.to_string(), revision.to_string())),
        false => Err(HubError::BadName(name.to_string())),
    })
}

/// One file fetched and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// Its path in the repo.
    pub name: String,
    /// Where it is on disk (the blob in the Hub cache).
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A checkpoint fetched from the Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `OWNER/NAME`.
    pub repo: String,
    /// The revision asked for.
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
    /// The files there were (optional absent ones left out).
    pub files: Vec<FetchedFile>,
}

/// What can go wrong fetching from the Hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The name is not `hf:OWNER/NAME[@REVISION]`.
    #[error("{0:?} is not a Hub voice name: write hf:OWNER/NAME or hf:OWNER/NAME@REVISION")]
    BadName(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the Hub client: {0}")]
    Client(Box<ApiError>),
    /// A file the checkpoint needs is not in the repo.
    #[error("{repo}@{revision} has no {file}, which this checkpoint needs: check the repo and revision, or name the files with --file")]
    Missing {
        /// The repo.
        repo: String,
        /// The revision.
        revision: String,
        /// The file.
        file: String,
    },
    /// The download failed (network, server, disk).
    #[error("cannot fetch {file} from {repo}@{revision} at {endpoint}: {reason} (run the command again to resume; set HF_ENDPOINT for a mirror, HF_TOKEN for a gated repo)")]
    Fetch {
        /// The repo.
        repo: String,
        /// The revision.
        revision: String,
        /// The file.
        file: String,
        /// The server.
        endpoint: String,
        /// Why (in the message, so not also a `source`).
        reason: Box<ApiError>,
    },
    /// The file's content does not hash to what the Hub says it is.
    #[error("{file} of {repo} is corrupt: its sha256 is {got}, the Hub says {expected}; the download was deleted, run the command again")]
    Checksum {
        /// The repo.
        repo: String,
        /// The file.
        file: String,
        /// The Hub's sha256.
        expected: String,
        /// What arrived.
        got: String,
    },
    /// Hashing or removing a file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Hub, with the cache it downloads into.
pub struct HubSource {
    api: Api,
    cache: Cache,
    endpoint: String,
}

impl HubSource {
    /// A client for `HF_ENDPOINT` (or the Hub), caching in `cache_dir`, with
    /// `HF_TOKEN` if set, a progress bar per file when `progress`, and three
    /// retries (each resuming where the transfer broke).
    pub fn new(cache_dir: &Path, progress: bool) -> Result<Self, HubError> {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
        let cache = Cache::new(cache_dir.to_path_buf());
        let api = ApiBuilder::from_cache(cache.clone())
            .with_endpoint(endpoint.clone())
            .with_token(token)
            .with_progress(progress)
            .with_retries(3)
            .build()
            .map_err(|e| HubError::Client(Box::new(e)))?;
        Ok(Self {
            api,
            cache,
            endpoint,
        })
    }

    /// Fetches `request`'s files (from the cache when the revision's current
    /// commit is already there), checks
    /// each LFS file against the Hub's sha256, and says where they are.
    pub fn fetch(&self, request: &HubRequest) -> Result<Fetched, HubError> {
        let repo = self.api.repo(Repo::with_revision(
            request.repo.clone(),
            RepoType::Model,
            request.revision.clone(),
        ));
        let fetch_error = |file: &str, source: ApiError| HubError::Fetch {
            repo: request.repo.clone(),
            revision: request.revision.clone(),
            file: file.to_string(),
            endpoint: self.endpoint.clone(),
            reason: Box::new(source),
        };
        let mut commit = String::new();
        let mut files = Vec::new();
        for HubFile { name, required } in &request.files {
            let name = name.as_ref();
            let metadata = match self.api.metadata(&repo.url(name)) {
                Ok(m) => m,
                Err(e) if is_not_found(&e) => {
                    if *required {
                        return Err(HubError::Missing {
                            repo: request.repo.clone(),
                            revision: request.revision.clone(),
                            file: name.to_string(),
                        });
                    }
                    continue;
                }
                Err(e) => return Err(fetch_error(name, e)),
            };
            commit = metadata.commit_hash().to_string();
            // In the cache at the commit the revision points to now, or fetched.
            let cached = self
                .cache
                .repo(Repo::with_revision(
                    request.repo.clone(),
                    RepoType::Model,
                    commit.clone(),
                ))
                .pointer_path(&commit)
                .join(name);
            let pointer = match cached.exists() {
                true => cached,
                false => repo.download(name).map_err(|e| fetch_error(name, e))?,
            };
            let blob = std::fs::canonicalize(&pointer).map_err(|source| StoreError::Io {
                path: pointer.clone(),
                source,
            })?;
            let sha256 = sha256_file(&blob)?;
            // An LFS file's ETag is its sha256; a small Git file's is a Git hash.
            let etag = metadata.etag().to_ascii_lowercase();
            let is_sha256 = etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit());
            if is_sha256 && etag != sha256 {
                let _ = std::fs::remove_file(&pointer);
                let _ = std::fs::remove_file(&blob);
                return Err(HubError::Checksum {
                    repo: request.repo.clone(),
                    file: name.to_string(),
                    expected: etag,
                    got: sha256,
                });
            }
            let size = std::fs::metadata(&blob)
                .map_err(|source| StoreError::Io {
                    path: blob.clone(),
                    source,
                })?
                .len();
            files.push(FetchedFile {
                name: name.to_string(),
                path: blob,
                sha256,
                size,
            });
        }
        Ok(Fetched {
            repo: request.repo.clone(),
            revision: request.revision.clone(),
            commit,
            files,
        })
    }
}

/// Whether the Hub answered 404 (no such file at that revision).
fn is_not_found(e: &ApiError) -> bool {
    match e {
        ApiError::RequestError(e) => matches!(**e, ureq::Error::StatusCode(404)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_are_parsed_and_bad_ones_refused() {
        let parse = |n: &str| parse_hub_name(n).map(|r| r.ok());
        assert_eq!(parse("en_US-joe-medium"), None, "not a Hub name");
        assert_eq!(
            parse("hf:facebook/mms-tts-eng"),
            Some(Some(("facebook/mms-tts-eng".into(), "main".into())))
        );
        assert_eq!(
            parse("hf:ResembleAI/chatterbox@v1.0"),
            Some(Some(("ResembleAI/chatterbox".into(), "v1.0".into())))
        );
        for bad in [
            "hf:",
            "hf:noslash",
            "hf:a/b/c",
            "hf:../x",
            "hf:a/..",
            "hf:a/b@",
            "hf:a b/c",
        ] {
            assert_eq!(parse(bad), Some(None), "{bad}");
        }
    }
}

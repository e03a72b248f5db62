//! What the front ends' reference tests share: reading a fixture of raw
//! little-endian f32 and the relative L2 they are held to.

use std::path::Path;

/// The f32 values of `tests/fixtures/DIR/NAME`.
pub fn read_f32(dir: &str, name: &str) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `‖got − want‖ / ‖want‖` in f64.
pub fn relative_l2(got: &[f32], want: &[f32]) -> f64 {
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|b| f64::from(*b).powi(2)).sum();
    (diff / norm).sqrt()
}

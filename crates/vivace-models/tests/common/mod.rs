//! What the model parity tests share: the fixtures folder and the
//! relative-L2 check every stage is held to.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

/// `tests/fixtures/DIR/NAME`, or `$ENV/NAME` when the environment variable
/// `env` names a folder (the real-size checks by hand).
pub fn fixture(dir: &str, env: Option<&str>, name: &str) -> PathBuf {
    match env.and_then(std::env::var_os) {
        Some(over) => PathBuf::from(over).join(name),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(dir)
            .join(name),
    }
}

/// `‖got − want‖ / ‖want‖` over all elements, in f64 (shapes must agree).
pub fn relative_l2(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shapes differ");
    let values = |t: &Tensor| -> Vec<f32> {
        t.flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1())
            .expect("a tensor's values")
    };
    let (g, w) = (values(got), values(want));
    let diff: f64 = g
        .iter()
        .zip(&w)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let norm: f64 = w.iter().map(|b| f64::from(*b).powi(2)).sum();
    (diff.sqrt() / norm.sqrt().max(1e-30)) as f32
}

/// Prints a stage's relative L2 and fails over `tolerance`.
pub fn check_within(stage: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
    let err = relative_l2(got, want);
    eprintln!("{stage}: relative L2 {err:.2e}");
    assert!(
        err < tolerance,
        "{stage}: relative L2 {err:.2e} over {tolerance:.0e}"
    );
}

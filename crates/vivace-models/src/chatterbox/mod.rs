//! Chatterbox (Resemble AI): zero-shot voice cloning in two halves.
//!
//! - [`s3gen`]: speech tokens and a reference prompt to 24 kHz audio;
//! - [`campplus`]: S3Gen's speaker encoder (filterbanks to an x-vector);
//! - T3 (text to speech tokens) comes next.

pub mod campplus;
pub mod s3gen;

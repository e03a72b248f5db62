//! Chatterbox (Resemble AI): zero-shot voice cloning in two halves.
//!
//! - [`s3gen`]: speech tokens and a reference prompt to 24 kHz audio;
//! - T3 (text to speech tokens) comes next.

pub mod s3gen;

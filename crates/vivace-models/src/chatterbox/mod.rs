//! Chatterbox (Resemble AI): zero-shot voice cloning in two halves.
//!
//! - [`s3gen`]: speech tokens and a reference prompt to 24 kHz audio;
//! - [`campplus`]: S3Gen's speaker encoder (filterbanks to an x-vector);
//! - [`s3_tokenizer`]: the S3 speech tokenizer v2 (a recording to speech tokens);
//! - [`t3`]: text and a voice's conditioning to speech tokens.

pub mod campplus;
pub mod s3_tokenizer;
pub mod s3gen;
pub mod t3;

//! Vivace: fast speech synthesis on any hardware, in Rust.
//!
//! This crate ties the pieces into what the command line (and later the
//! service) runs: [`voice_store`] finds or fetches voices, [`synth`] turns text
//! into audio with a Piper voice (phonemize, synthesize, post-process, write).

pub mod bench;
pub mod synth;
pub mod validate;
pub mod voice_store;

//! Vivace: fast speech synthesis on any hardware, in Rust.
//!
//! This crate ties the pieces into what the command line (and the
//! service) runs: [`voice_store`] finds or fetches voices, [`synth`] turns text
//! into audio with a Piper voice (phonemize, synthesize, post-process, write),
//! [`speaker`] turns reference recordings into speaker embeddings,
//! [`convert`] writes compact voice files,
//! [`server`] is the OpenAI-compatible HTTP service (`vivace serve`).

pub mod bench;
pub mod convert;
pub mod embed_bench;
pub mod model_bench;
pub mod server;
pub mod speaker;
pub mod synth;
pub mod validate;
pub mod voice_store;

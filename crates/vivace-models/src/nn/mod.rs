//! Neural-network blocks and CPU kernels shared by every model family.
//!
//! - [`checkpoint`]: a PyTorch model's published weights (safetensors or a
//!   `torch.save` zip), names unchanged, weight norm folded;
//! - [`cpu_gemm`]: the packed f32 GEMM (AVX-512 where the CPU has it, the
//!   `gemm` crate elsewhere) that the convolutions and the voice encoder's
//!   LSTM run on;
//! - [`cpu_gemm_int8`]: the same product on integer weights and per-call
//!   quantized activations (AVX-512 VNNI / AVX-VNNI byte and word dot
//!   products), for `--precision int8`;
//! - [`cpu_kernel`]: which kernel path runs (AVX-512 with or without VNNI,
//!   AVX2, portable), detected or forced with `VIVACE_CPU_KERNEL`;
//! - [`cpu_attention`]: multi-head attention without the score tensor;
//! - [`cpu_conv`]: fused 1-D convolutions (activation, bias and residual in
//!   one pass), transposed and depthwise ones;
//! - [`depthwise`]: depth-wise convolutions on any device (the CPU kernel,
//!   or the padded input times each tap) instead of one launch per channel;
//! - [`cpu_ops`]: element-wise kernels (gates, layer norm) and the one rule
//!   for where the fused CPU kernels run ([`cpu_ops::applies_on`]);
//! - [`layers`]: candle modules that load a checkpoint's convolutions and
//!   norms and pick the kernel by that rule;
//! - [`hifigan`]: a HiFi-GAN generator with its own config;
//! - [`linear`]: a linear layer fast for the few rows of a decode step
//!   (f32 or bf16 weights);
//! - [`random_weights`]: a model at its published shapes with random values,
//!   for timing where the published file cannot be had;
//! - [`graph`]: any fixed-shape module recorded as one CUDA graph;
//! - [`sampling`]: token sampling for autoregressive models;
//! - [`wavenet`]: VITS's gated WaveNet stack (flow couplings, posterior
//!   encoders).

pub mod checkpoint;
pub mod cpu_attention;
pub mod cpu_conv;
pub mod cpu_gemm;
pub mod cpu_gemm_int8;
pub mod cpu_kernel;
pub mod cpu_mrf;
pub mod cpu_ops;
pub mod depthwise;
pub mod graph;
pub mod hifigan;
pub mod int8;
mod int8_quads;
pub mod layers;
pub mod linear;
pub mod random_weights;
pub mod sampling;
pub mod wavenet;

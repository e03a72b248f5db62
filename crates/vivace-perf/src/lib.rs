//! Vivace's performance layer: hardware probe, device choice, backend settings,
//! warm-up and benchmarks. Empty until its own issue; the model code already
//! takes a `candle_core::Device` and `DType` so it can plug in here.

//! `vivace validate`: does the performance layer work on this machine?
//!
//! The seed module's eight checks (optimizer, CUDA settings, Metal settings,
//! CPU settings, batch size, inference scope, compile, warm-up), each PASS,
//! SKIP with a reason, or FAIL, plus two checks of the output:
//!
//! - **end to end**: the default voice speaks "Hello world." equal to Piper's
//!   output, synthesized on Piper's own alignment (the durations its ONNX
//!   graph decides), so that reduced precision rounding one duration the
//!   other way does not hide how close the samples are; whether the
//!   predicted durations equal Piper's is reported too;
//! - **device parity**: on an accelerator, the same voice on the CPU in f32
//!   and on the device agree sample by sample (again on one alignment).

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use vivace_models::compact;
use vivace_models::mms::MmsVoice;
use vivace_models::vits::{SynthesisParams, Vits};
use vivace_perf::batch::{memory_budget, MemoryPolicy};
use vivace_perf::plan::Precision;
use vivace_perf::{compile, CompileStep, DeviceKind, Optimizer};

use crate::bench::peak_rss;
use crate::family::Request;
use crate::synth::{LoadOptions, Synthesizer};
use crate::voice_store::{sha256_file, DEFAULT_VOICE};

/// Piper 1.8's waveform for "Hello world." on the default voice, noise 0
/// (`tools/make_goldens.py`), and its ids.
const HELLO_GOLDEN: &[u8] = include_bytes!("../tests/fixtures/piper_hello_s0_ls1.0.f32");
const HELLO_IDS: [i64; 31] = [
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];
/// Piper's alignments of the golden sentences: frames per id its ONNX graph
/// decides at noise 0 (`tools/make_duration_goldens.py`).
const PIPER_DURATIONS: &str = include_str!("../tests/fixtures/piper_durations.json");

/// Frames per id Piper's graph gives [`HELLO_IDS`], read from [`PIPER_DURATIONS`].
fn hello_durations() -> Result<Vec<u32>, String> {
    #[derive(serde::Deserialize)]
    struct Render {
        file: String,
        ids: Vec<i64>,
        durations: Vec<u32>,
    }
    #[derive(serde::Deserialize)]
    struct Fixture {
        renders: Vec<Render>,
    }
    let fixture: Fixture = serde_json::from_str(PIPER_DURATIONS)
        .map_err(|e| format!("piper_durations.json is unreadable: {e}"))?;
    fixture
        .renders
        .into_iter()
        .find(|r| r.file == "piper_hello_s0_ls1.0.f32" && r.ids == HELLO_IDS)
        .map(|r| r.durations)
        .ok_or_else(|| "piper_durations.json has no \"Hello world.\" render".to_string())
}

/// The text spoken by voices other than the default one.
const HELLO_TEXT: &str = "Hello world.";

/// Largest relative L2 error accepted for f32 weights computed in f32 or
/// TF32 (the GPU issue's bound). Measured on the CPU: 2.5e-5.
const TOLERANCE_F32: f64 = 1e-3;
/// Added where the weights are stored in f16 (a compact voice): measured on
/// the CPU over Piper's 14 golden renders, median 1.6e-2, worst 3.75e-2
/// (`docs/PERFORMANCE.md`).
const EXTRA_F16_WEIGHTS: f64 = 5e-2;
/// Added where the decoder computes in bf16: measured 1.4e-2 on the CPU
/// ("Hello world.").
const EXTRA_BF16_DECODER: f64 = 3e-2;
/// Added where the decoder computes in f16: measured 1.9e-3 on the CPU
/// ("Hello world.").
const EXTRA_F16_DECODER: f64 = 5e-3;

/// Added where the decoder's upsamplers and residual blocks run on
/// integers (`--precision int8`: bytes, words in the last stage): measured
/// 4.4e-2 on the CPU ("Hello world."; docs/PERFORMANCE.md for longer text,
/// where its log-mel distance to f32 is below bf16's).
const EXTRA_INT8_DECODER: f64 = 1e-1;

/// The error bound for weights stored in `stored` and computed in
/// `precision` (reduced precision applies to the decoder only): the f32
/// bound plus what each reduction was measured to cost, with margin.
pub fn tolerance(stored: DType, precision: Precision) -> f64 {
    let storage = match stored {
        DType::F32 | DType::F64 => 0.0,
        _ => EXTRA_F16_WEIGHTS,
    };
    let compute = match precision {
        Precision::Bf16 => EXTRA_BF16_DECODER,
        Precision::F16 => EXTRA_F16_DECODER,
        Precision::Int8 => EXTRA_INT8_DECODER,
        Precision::F32 | Precision::Tf32 => 0.0,
    };
    TOLERANCE_F32 + storage + compute
}

/// What `validate` knows about the voice it runs.
pub struct Subject {
    /// The voice's name (its file stem), for the compile report.
    pub name: String,
    /// The voice, loaded for the optimizer's device.
    pub synth: Synthesizer,
    /// Whether it is the default voice (its weights Piper's golden was made with).
    pub is_default_voice: bool,
    /// The dtype its weights are stored in (f16 for a default compact voice).
    pub stored_dtype: DType,
    /// The same voice on the CPU in f32, for the device parity check; `None`
    /// on the CPU.
    pub cpu_twin: Option<Synthesizer>,
}

impl Subject {
    /// Identifies the voice at `path` and loads it for `optimizer`'s device
    /// (and on the CPU too when that is an accelerator); the error says why
    /// it could not be, for the checks that need it.
    pub fn load(
        path: &Path,
        optimizer: &Optimizer,
        explicit_device: bool,
        espeak_data: &Path,
    ) -> Result<Self, String> {
        let (is_default_voice, stored_dtype) = identify(path).map_err(|e| e.to_string())?;
        let (synth, kind) = Synthesizer::load_planned(
            path,
            optimizer,
            explicit_device,
            &LoadOptions::new(espeak_data),
        )
        .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        let cpu_twin = match kind {
            DeviceKind::Cpu => None,
            _ => Some(
                Synthesizer::load(path, &Device::Cpu, DType::F32, espeak_data)
                    .map_err(|e| format!("cannot load {} on the CPU: {e}", path.display()))?,
            ),
        };
        Ok(Self {
            name: path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            synth,
            is_default_voice,
            stored_dtype,
            cpu_twin,
        })
    }
}

/// Why a voice could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    /// A compact voice's header is unreadable.
    #[error(transparent)]
    Model(#[from] vivace_models::Error),
    /// An `.onnx` could not be hashed.
    #[error(transparent)]
    Store(#[from] crate::voice_store::StoreError),
}

/// Whether the voice at `path` is the default voice (an `.onnx` with its
/// checksum, or a compact voice converted from it), and its weights' dtype.
pub fn identify(path: &Path) -> Result<(bool, DType), IdentifyError> {
    if MmsVoice::is_checkpoint(path) {
        return Ok((false, DType::F32));
    }
    if compact::is_compact_path(path) {
        let (_, origin) = compact::read_header(path)?;
        return Ok((
            origin.source_sha256 == DEFAULT_VOICE.onnx_sha256,
            origin.stored_dtype,
        ));
    }
    let sha = sha256_file(path)?;
    Ok((sha == DEFAULT_VOICE.onnx_sha256, DType::F32))
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Works.
    Pass,
    /// Does not apply here.
    Skip,
    /// Runs, with an error above a limit that was never measured for this
    /// setting (TF32 against the f32 bound) but within the bf16 decoder's:
    /// reported, not failed, until a measured bound replaces the limit.
    Warn,
    /// Broken.
    Fail,
}

/// A measured error against its limit: above it fails, except under TF32,
/// whose limit is f32's and was never measured on a GPU (TF32 keeps 10
/// bits of mantissa, as f16 does, whose weight rounding alone cost 1.4e-2
/// in the text encoder): there an error up to the bf16 decoder's bound
/// (bf16 keeps fewer bits than TF32) is reported as [`Status::Warn`], and
/// one beyond it, or not finite (silent or broken output), still fails.
fn judge(err: f64, bound: f64, precision: Precision) -> Status {
    let tf32_ceiling = tolerance(DType::F32, Precision::Bf16);
    if err <= bound {
        Status::Pass
    } else if precision == Precision::Tf32 && err <= tf32_ceiling {
        Status::Warn
    } else {
        Status::Fail
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was measured, or why it was skipped or failed.
    pub detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

/// "optimizer": the chosen device computes a small product correctly and
/// the plan is usable (at least one CPU thread); FAIL otherwise.
fn optimizer_check(optimizer: &Optimizer) -> Check {
    let plan = &optimizer.plan;
    let kind = optimizer.device.kind;
    let summary = format!(
        "device {kind}, precision {}, {} CPU threads{}",
        plan.precision,
        plan.cpu_threads,
        optimizer
            .device
            .fallback
            .as_ref()
            .map_or(String::new(), |f| format!(" (fell back: {f})"))
    );
    if plan.cpu_threads == 0 {
        return check(
            "optimizer",
            Status::Fail,
            format!("{summary}: no CPU thread planned"),
        );
    }
    // [[1, 2], [3, 4]] squared is [[7, 10], [15, 22]].
    let product = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &optimizer.device.device)
        .and_then(|a| a.matmul(&a))
        .and_then(|p| p.flatten_all()?.to_vec1::<f32>());
    match product {
        Ok(p) if p == [7.0, 10.0, 15.0, 22.0] => check("optimizer", Status::Pass, summary),
        Ok(p) => check(
            "optimizer",
            Status::Fail,
            format!("{summary}: a 2x2 product came out {p:?}, not [7, 10, 15, 22]"),
        ),
        Err(e) => check(
            "optimizer",
            Status::Fail,
            format!("{summary}: the device cannot compute: {e}"),
        ),
    }
}

/// Audio a run must give: at least one sample, every one finite.
fn check_audio(audio: &[f32]) -> candle_core::Result<()> {
    if audio.is_empty() {
        candle_core::bail!("the voice produced no audio");
    }
    if let Some(i) = audio.iter().position(|v| !v.is_finite()) {
        candle_core::bail!("sample {i} of {} is not a finite number", audio.len());
    }
    Ok(())
}

/// Runs every check. `subject` is the voice loaded for the optimizer's
/// device, or the reason it could not be.
pub fn run(optimizer: &Optimizer, subject: Result<&Subject, String>) -> Vec<Check> {
    let plan = &optimizer.plan;
    let kind = optimizer.device.kind;
    let mut checks = vec![optimizer_check(optimizer)];
    checks.push(cuda_settings(optimizer));
    checks.push(match kind {
        DeviceKind::Metal(_) => matmul_matches_cpu("metal settings", &optimizer.device.device),
        _ => check(
            "metal settings",
            Status::Skip,
            format!("device is {kind}, not Metal"),
        ),
    });
    let threads = candle_core::utils::get_num_threads();
    checks.push(if threads == plan.cpu_threads {
        check(
            "cpu settings",
            Status::Pass,
            format!("candle uses {threads} threads, as planned"),
        )
    } else {
        check(
            "cpu settings",
            Status::Fail,
            format!(
                "planned {} threads, candle uses {threads}",
                plan.cpu_threads
            ),
        )
    });

    // The voice's checks, each failed with `reason` when the voice cannot run.
    let fail_voice_checks = |checks: &mut Vec<Check>, reason: &str| {
        for name in [
            "batch size",
            "inference scope",
            "compile",
            "warm-up",
            "end to end",
            "device parity",
        ] {
            checks.push(check(name, Status::Fail, reason));
        }
    };
    let subject = match subject {
        Ok(s) => s,
        Err(reason) => {
            fail_voice_checks(&mut checks, &format!("voice unavailable: {reason}"));
            return checks;
        }
    };
    let synth = &subject.synth;
    // "Hello world." on the voice, deterministic. A VITS voice runs its
    // model directly at noise 0 (on Piper's ids for the default voice);
    // any other family goes through its own front end and the runtime's
    // step loop with a fixed seed.
    let vits = synth.vits().ok();
    let params = vits.map(|vits| SynthesisParams {
        noise_scale: 0.0,
        noise_w: 0.0,
        ..vits.synthesis_defaults()
    });
    let sentences = match synth.sentences(HELLO_TEXT) {
        Ok(sentences) => sentences,
        Err(e) => {
            fail_voice_checks(
                &mut checks,
                &format!("cannot turn {HELLO_TEXT:?} into model input: {e}"),
            );
            return checks;
        }
    };
    let ids: Vec<i64> = match subject.is_default_voice {
        true => HELLO_IDS.to_vec(),
        false => sentences
            .iter()
            .flat_map(|s| s.ids.iter().copied())
            .collect(),
    };
    let seeded = match synth.params(&Request {
        seed: Some(0),
        ..Request::default()
    }) {
        Ok(p) => p,
        Err(e) => {
            fail_voice_checks(&mut checks, &format!("the voice's defaults: {e}"));
            return checks;
        }
    };
    let speak = || -> candle_core::Result<Vec<f32>> {
        match (vits, &params) {
            (Some(vits), Some(params)) => vits.model().synthesize(&ids, params),
            _ => crate::runtime::render(synth.voice().as_ref(), &sentences, &seeded, 1)
                .map(|(audios, _)| audios.concat())
                .map_err(|e| candle_core::Error::Msg(e.to_string())),
        }
    };

    checks.push(batch_size(optimizer, &speak));

    let before = optimizer.latency().calls;
    let scoped = {
        let _scope = optimizer.inference_scope();
        speak()
    };
    let after = optimizer.latency();
    checks.push(match scoped {
        Ok(_) if after.calls == before + 1 && after.p50_s > 0.0 => check(
            "inference scope",
            Status::Pass,
            format!(
                "latency recorded ({:.3} s median over {} calls)",
                after.p50_s, after.calls
            ),
        ),
        Ok(_) => check(
            "inference scope",
            Status::Fail,
            "the call's latency was not recorded",
        ),
        Err(e) => check(
            "inference scope",
            Status::Fail,
            format!("synthesis failed: {e}"),
        ),
    });

    let family = synth.voice().capabilities().family;
    let (fused_text, fused_decoder) = vits.map_or((false, false), |v| v.model().fused_kernels());
    let report = compile(
        &subject.name,
        plan,
        |plan| {
            Ok::<_, candle_core::Error>(vec![
                CompileStep {
                    name: "dtype".into(),
                    applied: true,
                    detail: format!("weights loaded as {:?}", plan.dtype()),
                },
                CompileStep {
                    name: "fusion".into(),
                    applied: fused_text || fused_decoder,
                    detail: match (fused_text, fused_decoder) {
                        (true, true) => "fused CPU kernels everywhere: convolutions with their \
                                         activation and residual, WaveNet gates, layer norms"
                            .into(),
                        (true, false) => format!(
                            "fused CPU kernels but in the {} decoder (candle's there)",
                            plan.precision
                        ),
                        _ if vits.is_none() => {
                            format!("no fused kernels for the {family} family yet")
                        }
                        _ => {
                            format!("candle's kernels: the fused ones are f32 on the CPU ({kind})")
                        }
                    },
                },
            ])
        },
        // Warm-up runs that produce no audio, or NaNs, fail the check.
        || speak().and_then(|audio| check_audio(&audio)),
    );
    match report {
        Ok(report) => {
            let steps: Vec<String> = report
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}",
                        s.name,
                        if s.applied { "applied" } else { "skipped" }
                    )
                })
                .collect();
            checks.push(check("compile", Status::Pass, steps.join(", ")));
            checks.push(match &report.warmup {
                Some(w) => warmup_check(w),
                None => check("warm-up", Status::Skip, "VIVACE_WARMUP=0"),
            });
        }
        Err(e) => {
            checks.push(check("compile", Status::Fail, e.to_string()));
            checks.push(check("warm-up", Status::Fail, e.to_string()));
        }
    }

    if family == "kokoro" {
        checks.push(kokoro_end_to_end(synth, &speak));
        checks.push(check(
            "device parity",
            Status::Skip,
            "Kokoro runs on the CPU, in its export's int8 arithmetic, whatever the device",
        ));
        return checks;
    }
    let Some(params) = params else {
        // Both compare against VITS references (Piper's golden, the CPU's
        // alignment): nothing to compare another family with yet.
        for name in ["end to end", "device parity"] {
            checks.push(check(
                name,
                Status::Skip,
                format!("a VITS check; the {family} family brings no reference for it yet"),
            ));
        }
        return checks;
    };
    checks.push(end_to_end(subject, &params, plan.precision));
    // The CPU twin is loaded from the same file: storage error cancels.
    checks.push(device_parity(
        subject,
        &ids,
        &params,
        tolerance(DType::F32, plan.precision),
        plan.precision,
    ));
    checks
}

/// Judges a warm-up: it fails when nothing was timed. Warm calls slower
/// than the cold one (by more than 1.5 times) or latency that does not
/// settle are reported, not failed: on a busy machine (tests in parallel on
/// two cores) timings say more about the neighbours than about the voice.
fn warmup_check(w: &vivace_perf::warmup::WarmupReport) -> Check {
    let timing = format!(
        "cold {:.3} s, warm {:.3} s after {} runs",
        w.cold.as_secs_f64(),
        w.warm.as_secs_f64(),
        w.runs
    );
    if w.runs == 0 || w.warm.is_zero() {
        return check(
            "warm-up",
            Status::Fail,
            format!("nothing was timed ({timing})"),
        );
    }
    let note = if w.warm > w.cold.mul_f64(1.5) {
        " (warm calls slower than the first one: is the machine busy?)"
    } else if !w.settled {
        " (latency did not settle: is the machine busy?)"
    } else {
        ""
    };
    check("warm-up", Status::Pass, format!("{timing}{note}"))
}

/// The default voice's "Hello world." against Piper's, on Piper's alignment.
fn end_to_end(subject: &Subject, params: &SynthesisParams, precision: Precision) -> Check {
    let bound = tolerance(subject.stored_dtype, precision);
    const NAME: &str = "end to end";
    if !subject.is_default_voice {
        return check(
            NAME,
            Status::Skip,
            format!(
                "Piper's golden output is for {} (its .onnx or a compact voice converted from it)",
                DEFAULT_VOICE.name
            ),
        );
    }
    let piper = match hello_durations() {
        Ok(d) => d,
        Err(e) => return check(NAME, Status::Fail, e),
    };
    let model = match subject.synth.vits() {
        Ok(vits) => vits.model(),
        Err(e) => return check(NAME, Status::Fail, e.to_string()),
    };
    let run = || -> candle_core::Result<(Vec<u32>, Vec<f32>)> {
        Ok((
            model.durations(&HELLO_IDS, params)?,
            model.synthesize_with_durations(&HELLO_IDS, params, &piper)?,
        ))
    };
    let (durations, audio) = match run() {
        Ok(r) => r,
        Err(e) => return check(NAME, Status::Fail, format!("synthesis failed: {e}")),
    };
    let golden: Vec<f32> = HELLO_GOLDEN
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if audio.len() != golden.len() {
        return check(
            NAME,
            Status::Fail,
            format!(
                "{} samples on Piper's alignment, Piper gives {}",
                audio.len(),
                golden.len()
            ),
        );
    }
    let err = relative_l2(&audio, &golden);
    let differing = count_differences(&durations, &piper);
    // Full f32 must also decide Piper's durations; reduced precision (TF32
    // included) may round one the other way, which is reported, not failed.
    let exact = precision == Precision::F32 && subject.stored_dtype == DType::F32;
    let status = match judge(err, bound, precision) {
        Status::Pass if differing > 0 && exact => Status::Fail,
        status => status,
    };
    check(
        NAME,
        status,
        format!(
            "\"Hello world.\" vs Piper 1.8 on its alignment: relative L2 error {err:.1e} (limit {bound:.1e}); predicted durations {}",
            describe_differences(differing, piper.len())
        ),
    )
}

/// kokoro-onnx 0.6.1's "Hello world." with `af_heart`
/// (`tools/make_kokoro_e2e_goldens.py`): the text pipeline, onnxruntime on
/// the int8 export and the silence trim.
const KOKORO_HELLO_GOLDEN: &[u8] = include_bytes!("../tests/fixtures/kokoro/e2e_hello.f32");
/// The voice [`KOKORO_HELLO_GOLDEN`] was spoken with.
const KOKORO_GOLDEN_VOICE: &str = "af_heart";
/// Largest relative L2 distance of the magnitude spectrograms accepted
/// against kokoro-onnx: the waveform drifts in phase where ALBERT's int8
/// rounding flips a step (docs/KOKORO.md); measured 2026-12-05 on the CPU:
/// 0.129 for this text (0.110 from the stage goldens' tokens).
const KOKORO_SPECTRAL_BOUND: f64 = 0.25;
/// Samples the silence trim may keep more or less at the ends (two hops).
const KOKORO_TRIM_SLACK: usize = 1024;

/// A Kokoro voice's "Hello world." against kokoro-onnx's.
fn kokoro_end_to_end(
    synth: &Synthesizer,
    speak: &dyn Fn() -> candle_core::Result<Vec<f32>>,
) -> Check {
    const NAME: &str = "end to end";
    let voice = synth.voice().capabilities().speaker_names.first().cloned();
    if voice.as_deref() != Some(KOKORO_GOLDEN_VOICE) {
        return check(
            NAME,
            Status::Skip,
            format!("kokoro-onnx's golden output is for kokoro:{KOKORO_GOLDEN_VOICE}"),
        );
    }
    let audio = match speak() {
        Ok(audio) => audio,
        Err(e) => return check(NAME, Status::Fail, format!("synthesis failed: {e}")),
    };
    let golden: Vec<f32> = KOKORO_HELLO_GOLDEN
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let n = audio.len().min(golden.len());
    let distance = spectral_distance(&audio[..n], &golden[..n]);
    let lengths_agree = audio.len().abs_diff(golden.len()) <= KOKORO_TRIM_SLACK;
    check(
        NAME,
        if lengths_agree && distance <= KOKORO_SPECTRAL_BOUND {
            Status::Pass
        } else {
            Status::Fail
        },
        format!(
            "\"Hello world.\" vs kokoro-onnx 0.6.1: {} samples against {}, magnitude spectrogram relative L2 {distance:.3} (limit {KOKORO_SPECTRAL_BOUND})",
            audio.len(),
            golden.len()
        ),
    )
}

/// On an accelerator: the device's output against the CPU's in f32, on the
/// CPU's alignment.
fn device_parity(
    subject: &Subject,
    ids: &[i64],
    params: &SynthesisParams,
    bound: f64,
    precision: Precision,
) -> Check {
    const NAME: &str = "device parity";
    let Some(cpu) = &subject.cpu_twin else {
        return check(
            NAME,
            Status::Skip,
            "the voice runs on the CPU: nothing to compare",
        );
    };
    let (cpu, subject) = match (cpu.vits(), subject.synth.vits()) {
        (Ok(cpu), Ok(subject)) => (cpu.model(), subject.model()),
        (Err(e), _) | (_, Err(e)) => return check(NAME, Status::Fail, e.to_string()),
    };
    match compare_on_alignment(cpu, subject, ids, params) {
        Ok(c) => check(
            NAME,
            judge(c.relative_l2, bound, precision),
            format!(
                "device vs CPU f32 on the CPU's alignment: relative L2 error {:.1e} (limit {bound:.1e}); predicted durations {}",
                c.relative_l2,
                describe_differences(c.durations_differing, c.ids)
            ),
        ),
        Err(e) => check(NAME, Status::Fail, format!("synthesis failed: {e}")),
    }
}

/// Two models speaking the same ids, compared on the first one's alignment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AlignedComparison {
    /// Input ids.
    pub ids: usize,
    /// Ids whose predicted duration differs between the two.
    pub durations_differing: usize,
    /// `||other - reference|| / ||reference||`, both on the reference's durations.
    pub relative_l2: f64,
}

/// Speaks `ids` with `reference` and with `other` on the durations
/// `reference` predicts, so that a duration rounding the other way in
/// `other` (reduced precision, another device) does not hide how close the
/// samples are; counts the durations `other` would have predicted differently.
pub fn compare_on_alignment(
    reference: &Vits,
    other: &Vits,
    ids: &[i64],
    params: &SynthesisParams,
) -> candle_core::Result<AlignedComparison> {
    let durations = reference.durations(ids, params)?;
    let want = reference.synthesize_with_durations(ids, params, &durations)?;
    let got = other.synthesize_with_durations(ids, params, &durations)?;
    if got.len() != want.len() {
        candle_core::bail!(
            "{} samples against {} on the same durations",
            got.len(),
            want.len()
        );
    }
    Ok(AlignedComparison {
        ids: ids.len(),
        durations_differing: count_differences(&other.durations(ids, params)?, &durations),
        relative_l2: relative_l2(&got, &want),
    })
}

/// Positions where two duration lists differ (all of them when lengths differ).
fn count_differences(a: &[u32], b: &[u32]) -> usize {
    if a.len() != b.len() {
        return a.len().max(b.len());
    }
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

fn describe_differences(differing: usize, total: usize) -> String {
    if differing == 0 {
        format!("equal ({total} ids)")
    } else {
        format!("differ for {differing} of {total} ids")
    }
}

/// On CUDA, TF32 must be on exactly when planned: a 512×512 matmul's error
/// against f64 is ~1e-3 with TF32 (10-bit mantissa) and ~1e-6 without.
fn cuda_settings(optimizer: &Optimizer) -> Check {
    let kind = optimizer.device.kind;
    if !matches!(kind, DeviceKind::Cuda(_)) {
        return check(
            "cuda settings",
            Status::Skip,
            format!("device is {kind}, not CUDA"),
        );
    }
    let measure = || -> candle_core::Result<f64> {
        let n = 512;
        let a = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu)?;
        let b = Tensor::randn(0f32, 1f32, (n, n), &Device::Cpu)?;
        let exact = a.to_dtype(DType::F64)?.matmul(&b.to_dtype(DType::F64)?)?;
        let dev = &optimizer.device.device;
        let got = a
            .to_device(dev)?
            .matmul(&b.to_device(dev)?)?
            .to_device(&Device::Cpu)?;
        let diff = (got.to_dtype(DType::F64)? - &exact)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
        let norm = exact.sqr()?.sum_all()?.to_scalar::<f64>()?;
        Ok((diff / norm).sqrt())
    };
    match measure() {
        Ok(err) => {
            let tf32_seen = err > 1e-4;
            let ok = tf32_seen == optimizer.plan.tf32;
            check(
                "cuda settings",
                if ok { Status::Pass } else { Status::Fail },
                format!(
                    "TF32 planned {}, matmul relative error {err:.1e} ({})",
                    optimizer.plan.tf32,
                    if tf32_seen { "TF32 active" } else { "full f32" }
                ),
            )
        }
        Err(e) => check("cuda settings", Status::Fail, e.to_string()),
    }
}

/// A small matmul on `device` equals the CPU's.
fn matmul_matches_cpu(name: &'static str, device: &Device) -> Check {
    let run = || -> candle_core::Result<f32> {
        let a = Tensor::randn(0f32, 1f32, (64, 64), &Device::Cpu)?;
        let want = a.matmul(&a)?;
        let got = a
            .to_device(device)?
            .matmul(&a.to_device(device)?)?
            .to_device(&Device::Cpu)?;
        (got - want)?.abs()?.max_all()?.to_scalar::<f32>()
    };
    match run() {
        Ok(d) if d < 1e-3 => check(
            name,
            Status::Pass,
            format!("matmul matches the CPU (max diff {d:.1e})"),
        ),
        Ok(d) => check(
            name,
            Status::Fail,
            format!("matmul differs from the CPU by {d:.1e}"),
        ),
        Err(e) => check(name, Status::Fail, e.to_string()),
    }
}

/// The memory budget from measured memory per item (peak RSS growth of one
/// synthesis) and available memory.
fn batch_size(optimizer: &Optimizer, speak: &dyn Fn() -> candle_core::Result<Vec<f32>>) -> Check {
    let before = peak_rss();
    let start = Instant::now();
    if let Err(e) = speak() {
        return check("batch size", Status::Fail, format!("synthesis failed: {e}"));
    }
    let elapsed = start.elapsed();
    let (Some(before), Some(after)) = (before, peak_rss()) else {
        return check(
            "batch size",
            Status::Skip,
            "peak memory is not readable on this OS",
        );
    };
    // Peak growth is 0 when earlier calls already reached the peak: then the
    // 32 MiB floor stands in, and the detail says so.
    let growth = after.saturating_sub(before);
    let floor = 32u64 << 20;
    let per_item = growth.max(floor);
    let free = optimizer.hardware.cpu.available_memory.unwrap_or(0);
    let policy = MemoryPolicy::default();
    let budget = memory_budget(free, per_item, policy);
    let fits = (free as f64 * policy.utilization) as u64 >= per_item + policy.reserve;
    check(
        "batch size",
        if fits { Status::Pass } else { Status::Fail },
        format!(
            "{:.0} MiB per sentence{}, {:.1} GiB available → at most {budget} in flight ({:.3} s per call)",
            per_item as f64 / (1u64 << 20) as f64,
            if growth < floor { " (floor: peak memory did not grow)" } else { " (peak growth)" },
            free as f64 / (1u64 << 30) as f64,
            elapsed.as_secs_f64()
        ),
    )
}

/// Relative L2 distance of two signals' magnitude spectrograms (Hann
/// windows of 1,024 samples, hop 256): a comparison that a drift in phase
/// does not dominate. Infinite when `b` is shorter than one window or
/// silent.
pub fn spectral_distance(a: &[f32], b: &[f32]) -> f64 {
    const N: usize = 1024;
    const HOP: usize = 256;
    let window: Vec<f64> = (0..N)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N as f64).cos())
        .collect();
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..N)
        .map(|i| {
            let angle = 2.0 * std::f64::consts::PI * i as f64 / N as f64;
            (angle.cos(), angle.sin())
        })
        .unzip();
    let magnitudes = |x: &[f32]| -> Vec<f64> {
        let mut out = Vec::new();
        let mut start = 0;
        while start + N <= x.len() {
            let frame: Vec<f64> = (0..N)
                .map(|i| f64::from(x[start + i]) * window[i])
                .collect();
            for k in 0..=N / 2 {
                let (mut re, mut im) = (0.0, 0.0);
                for (n, &v) in frame.iter().enumerate() {
                    let idx = (k * n) % N;
                    re += v * cos[idx];
                    im -= v * sin[idx];
                }
                out.push((re * re + im * im).sqrt());
            }
            start += HOP;
        }
        out
    };
    let (ma, mb) = (magnitudes(a), magnitudes(b));
    if mb.iter().all(|&m| m == 0.0) {
        // Shorter than one window, or a silent reference: nothing to compare.
        return f64::INFINITY;
    }
    let diff: f64 = ma
        .iter()
        .zip(&mb)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    diff / mb.iter().map(|y| y * y).sum::<f64>().sqrt()
}

/// `||a - b|| / ||b||`.
pub fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x - y).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vivace_perf::{DeviceRequest, Hardware, Overrides, Plan};

    /// Above its limit an error fails, except under TF32 (no measured
    /// bound): up to the bf16 decoder's bound it is a warning there, which
    /// `validate` does not count as a failure.
    #[test]
    fn an_error_above_the_limit_fails_except_under_tf32() {
        assert_eq!(judge(5e-4, 1e-3, Precision::F32), Status::Pass);
        assert_eq!(judge(5e-4, 1e-3, Precision::Tf32), Status::Pass);
        assert_eq!(judge(1.4e-2, 1e-3, Precision::F32), Status::Fail);
        assert_eq!(judge(1.4e-2, 1e-3, Precision::Tf32), Status::Warn);
        assert_eq!(judge(0.2, 0.13, Precision::Bf16), Status::Fail);
        // Beyond what even bf16 is allowed, or not a number: broken output.
        assert_eq!(judge(0.5, 1e-3, Precision::Tf32), Status::Fail);
        assert_eq!(judge(f64::NAN, 1e-3, Precision::Tf32), Status::Fail);
    }

    #[test]
    fn a_warm_up_that_made_things_slower_or_timed_nothing_fails() {
        use std::time::Duration;
        use vivace_perf::warmup::WarmupReport;
        let report = |cold: u64, warm: u64, runs, settled| WarmupReport {
            cold: Duration::from_millis(cold),
            warm: Duration::from_millis(warm),
            runs,
            settled,
        };
        assert_eq!(
            warmup_check(&report(300, 100, 5, true)).status,
            Status::Pass
        );
        // Unsettled on a busy machine: said, not failed.
        let busy = warmup_check(&report(300, 200, 20, false));
        assert_eq!(busy.status, Status::Pass);
        assert!(busy.detail.contains("did not settle"), "{}", busy.detail);
        // Warm slower than cold: said, not failed (timings on a shared
        // machine are the neighbours' as much as the voice's).
        let slower = warmup_check(&report(100, 200, 5, true));
        assert_eq!(slower.status, Status::Pass);
        assert!(slower.detail.contains("slower"), "{}", slower.detail);
        assert_eq!(warmup_check(&report(100, 0, 0, false)).status, Status::Fail);
    }

    fn cpu_optimizer() -> Optimizer {
        let device = vivace_perf::device::open(DeviceRequest::Cpu).expect("the CPU opens");
        let hardware = Hardware::probe();
        let plan = Plan::new(&hardware, device.kind, &Overrides::default()).expect("a plan");
        Optimizer::from_parts(hardware, device, plan)
    }

    /// Before 2026-12-04 "optimizer" was PASS whatever the plan or device.
    #[test]
    fn optimizer_check_fails_on_an_unusable_plan() {
        let mut optimizer = cpu_optimizer();
        assert_eq!(optimizer_check(&optimizer).status, Status::Pass);
        optimizer.plan.cpu_threads = 0;
        let failed = optimizer_check(&optimizer);
        assert_eq!(failed.status, Status::Fail, "{}", failed.detail);
        assert!(failed.detail.contains("no CPU thread"), "{}", failed.detail);
    }

    /// A warm-up run that gives no audio or NaNs fails "compile".
    #[test]
    fn silent_or_nan_audio_fails_the_compile_check() {
        assert!(check_audio(&[0.0, 0.1]).is_ok());
        assert!(check_audio(&[]).is_err());
        let nan = check_audio(&[0.0, f32::NAN]).expect_err("NaN accepted");
        assert!(nan.to_string().contains("sample 1"), "{nan}");
    }

    /// A family validate has never heard of: a tone per sentence, in one step.
    struct Tone(crate::family::Capabilities);

    impl crate::family::Model for Tone {
        type Params = ();
        type State = usize;

        fn capabilities(&self) -> &crate::family::Capabilities {
            &self.0
        }
        fn default_params(&self) {}
        fn set_speed(&self, _: &mut (), _: f64) {}
        fn set_speaker(
            &self,
            _: &mut (),
            _: &crate::family::SpeakerRef,
        ) -> Result<(), crate::synth::SynthError> {
            Err(crate::synth::SynthError::CannotClone)
        }
        fn sentences(
            &self,
            text: &str,
        ) -> Result<Vec<crate::family::Sentence>, crate::synth::SynthError> {
            Ok(vec![crate::family::Sentence {
                phonemes: text.chars().map(String::from).collect(),
                ids: text.bytes().map(i64::from).collect(),
                pause_after: None,
            }])
        }
        fn start(
            &self,
            sentence: &crate::family::Sentence,
            _: &(),
        ) -> Result<usize, crate::synth::SynthError> {
            Ok(sentence.ids.len() * 100)
        }
        fn step(
            &self,
            batch: &mut [&mut usize],
        ) -> Result<Vec<crate::family::Chunk>, crate::family::StepError> {
            Ok(batch
                .iter()
                .map(|&&mut n| crate::family::Chunk {
                    audio: (0..n).map(|i| (i as f32 * 0.05).sin() * 0.5).collect(),
                    done: true,
                })
                .collect())
        }
        fn smoke_test(&self) -> Result<(), crate::synth::SynthError> {
            Ok(())
        }
    }

    /// Adding a family changes nothing in validate: its voice runs through
    /// the generic checks, and the VITS-only ones say they do not apply.
    #[test]
    fn a_voice_of_another_family_is_validated_without_a_change_here() {
        let tone = Tone(crate::family::Capabilities {
            family: "tone",
            sample_rate: 16_000,
            speakers: 1,
            speaker_names: Vec::new(),
            languages: Vec::new(),
            clones: false,
            streams: false,
        });
        let subject = Subject {
            name: "tone".into(),
            synth: Synthesizer::new(std::sync::Arc::new(tone)),
            is_default_voice: false,
            stored_dtype: DType::F32,
            cpu_twin: None,
        };
        let checks = run(&cpu_optimizer(), Ok(&subject));
        let status = |name: &str| {
            checks
                .iter()
                .find(|c| c.name == name)
                .map(|c| (c.status, c.detail.clone()))
                .unwrap_or_else(|| panic!("no {name} check"))
        };
        for name in ["inference scope", "compile", "warm-up"] {
            let (got, detail) = status(name);
            assert_eq!(got, Status::Pass, "{name}: {detail}");
        }
        assert_ne!(
            status("batch size").0,
            Status::Fail,
            "{:?}",
            status("batch size")
        );
        assert!(
            status("compile").1.contains("fusion: skipped"),
            "{:?}",
            status("compile")
        );
        for name in ["end to end", "device parity"] {
            let (got, detail) = status(name);
            assert_eq!(got, Status::Skip, "{name}: {detail}");
        }
    }
}

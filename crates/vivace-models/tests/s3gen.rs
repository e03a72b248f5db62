//! S3Gen against the reference (`chatterbox-tts` 0.1.7) on small random
//! weights: goldens from `tools/make_s3gen_goldens.py`, stage by stage
//! (encoder, each decoder step, final mel, F0, sine source, audio), with the
//! flow's starting noise injected and the vocoder's noise off.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use vivace_models::chatterbox::s3gen::{Prompt, S3Gen, S3GenConfig, Solver};

/// Tolerance of every stage: relative L2 distance in f32.
const TOLERANCE: f32 = 1e-3;

mod common;

use common::{check_within, relative_l2};

fn fixture(name: &str) -> PathBuf {
    common::fixture("s3gen", None, name)
}

fn config() -> S3GenConfig {
    let text = std::fs::read_to_string(fixture("config.json")).expect("fixture config");
    serde_json::from_str(&text).expect("fixture config parses")
}

struct Goldens(std::collections::HashMap<String, Tensor>);

impl Goldens {
    fn load(name: &str) -> Self {
        Self(candle_core::safetensors::load(fixture(name), &Device::Cpu).expect("goldens"))
    }

    fn get(&self, name: &str) -> &Tensor {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("golden {name} missing"))
    }

    fn tokens(&self, name: &str) -> Vec<u32> {
        let v: Vec<i64> = self.get(name).to_vec1().expect("int64 tokens");
        v.into_iter().map(|t| t as u32).collect()
    }

    fn prompt(&self) -> Prompt {
        Prompt {
            tokens: self.tokens("prompt_token"),
            mel: self.get("prompt_feat").clone(),
            embedding: self.get("embedding").clone(),
        }
    }
}

fn check(stage: &str, got: &Tensor, want: &Tensor) {
    check_within(stage, got, want, TOLERANCE);
}

fn parity(weights: &str, goldens: &str, solver: Solver) {
    parity_in(weights, goldens, solver, DType::F32, [TOLERANCE; 2]);
}

/// [`parity`] in `dtype` within `tolerance` for the flow's stages and F0
/// and `audio` for the waveforms: anything but f32 on the CPU
/// takes candle's ops instead of Vivace's CPU kernels, the path a GPU runs.
fn parity_in(
    weights: &str,
    goldens: &str,
    solver: Solver,
    dtype: DType,
    [tolerance, audio]: [f32; 2],
) {
    let check =
        |stage: &str, got: &Tensor, want: &Tensor| check_within(stage, got, want, tolerance);
    let model = S3Gen::load(&fixture(weights), &config(), &Device::Cpu, dtype).expect("loads");
    assert_eq!(model.solver(), solver);
    let g = Goldens::load(goldens);
    let prompt = g.prompt();
    let tokens = g.tokens("speech_tokens");

    let mu = model.encode(&prompt, &tokens).unwrap();
    check(
        "encoder (mu)",
        &mu.squeeze(0).unwrap().t().unwrap(),
        g.get("mu"),
    );

    let states = g.get("euler_states");
    let mut seen = 0;
    let mel = model
        .flow(
            &prompt,
            &tokens,
            g.get("noise"),
            model.default_steps(),
            &mut |k, x| {
                check(
                    &format!("step {k}"),
                    &x.squeeze(0).unwrap(),
                    &states.get(k).unwrap(),
                );
                seen += 1;
            },
        )
        .unwrap();
    assert_eq!(seen, model.default_steps());
    check("mel", &mel.squeeze(0).unwrap(), g.get("mel"));

    // The vocoder from the reference's mel, so its error is its own.
    let want_mel = g.get("mel").unsqueeze(0).unwrap();
    let f0 = model.f0(&want_mel).unwrap();
    check("f0", &f0.squeeze(0).unwrap(), g.get("f0"));
    let wav = model.vocode(&want_mel, None).unwrap();
    check_within("waveform", &wav, g.get("wav"), audio);

    // End to end: tokens + prompt to audio.
    let wav = model.vocode(&mel, None).unwrap();
    check_within("end to end", &wav, g.get("wav"), audio);
}

#[test]
fn s3gen_matches_reference() {
    parity(
        "s3gen.safetensors",
        "s3gen_goldens.safetensors",
        Solver::GuidedCosine,
    );
}

#[test]
fn s3gen_meanflow_matches_reference() {
    parity(
        "s3gen_meanflow.safetensors",
        "s3gen_meanflow_goldens.safetensors",
        Solver::Meanflow,
    );
}

/// The candle path (what CUDA and Metal run), in f16 on the CPU (candle's
/// CPU layer norm takes no f64): each flow stage and F0 within 5e-2, the
/// waveforms within 0.2 (measured: 3e-2 and 0.13 from the reference's mel,
/// 0.12 end to end: half precision in the vocoder, whose F0 drives the
/// sine source's phase); a wrong transpose or a missing term gives errors
/// of order 1.
#[test]
fn candle_path_matches_reference() {
    let tolerance = [5e-2, 0.2];
    parity_in(
        "s3gen.safetensors",
        "s3gen_goldens.safetensors",
        Solver::GuidedCosine,
        DType::F16,
        tolerance,
    );
    parity_in(
        "s3gen_meanflow.safetensors",
        "s3gen_meanflow_goldens.safetensors",
        Solver::Meanflow,
        DType::F16,
        tolerance,
    );
}

/// The built-in voice file (`conds.pt`, a torch zip) gives the prompt it
/// was saved from.
#[test]
fn conds_pt_gives_the_prompt() {
    let prompt = Prompt::from_conds(&fixture("conds.pt")).expect("conds.pt reads");
    let g = Goldens::load("s3gen_goldens.safetensors");
    let want = g.prompt();
    assert_eq!(prompt.tokens, want.tokens);
    assert_eq!(relative_l2(&prompt.mel, &want.mel), 0.0);
    assert_eq!(relative_l2(&prompt.embedding, &want.embedding), 0.0);
}

/// Files that are not what they should be: errors naming the file (and the
/// tensor), never panics.
#[test]
fn wrong_files_are_clear_errors() {
    let cfg = config();
    // The weights of one size loaded as another: the first tensor that does not fit.
    let err = S3Gen::load(
        &fixture("s3gen.safetensors"),
        &S3GenConfig::chatterbox(),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("s3gen.safetensors") && err.contains("flow.input_embedding.weight"),
        "{err}"
    );
    // Not a checkpoint at all.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("s3gen.safetensors");
    std::fs::write(&junk, b"not safetensors").unwrap();
    let err = S3Gen::load(&junk, &cfg, &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("s3gen.safetensors"), "{err}");
    let missing = dir.path().join("missing.safetensors");
    let err = S3Gen::load(&missing, &cfg, &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.safetensors"), "{err}");
    // A weights file is not a conds.pt.
    let err = Prompt::from_conds(&fixture("s3gen.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s3gen.safetensors") && err.contains("conds.pt"),
        "{err}"
    );
}

/// Tokens out of range and noise too short are errors, not panics.
#[test]
fn bad_inputs_are_errors() {
    let model = S3Gen::load(
        &fixture("s3gen.safetensors"),
        &config(),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let g = Goldens::load("s3gen_goldens.safetensors");
    let prompt = g.prompt();
    let err = model.encode(&prompt, &[5, 300, 7]).unwrap_err().to_string();
    assert!(err.contains("300") && err.contains("0..300"), "{err}");
    let short = g.get("noise").narrow(1, 0, 10).unwrap();
    let err = model
        .flow(&prompt, &[1, 2, 3], &short, 2, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("noise"), "{err}");
    let err = model
        .flow(&prompt, &[], g.get("noise"), 2, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no frames left"), "{err}");
}

/// Seeded noise: the same seed, the same audio; another seed, other audio.
#[test]
fn seeded_noise_is_reproducible() {
    use vivace_models::chatterbox::s3gen::{FlowNoise, SeededSourceNoise};
    let model = S3Gen::load(
        &fixture("s3gen_meanflow.safetensors"),
        &config(),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let g = Goldens::load("s3gen_meanflow_goldens.safetensors");
    let prompt = g.prompt();
    let tokens = g.tokens("speech_tokens");
    let frames = 2 * (prompt.tokens.len() + tokens.len());
    let run = |seed: u64| {
        let noise = FlowNoise::Seeded(seed).for_frames(frames).unwrap();
        let mel = model
            .flow(&prompt, &tokens, &noise, 2, &mut |_, _| {})
            .unwrap();
        model
            .vocode(&mel, Some(&mut SeededSourceNoise::new(seed)))
            .unwrap()
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(relative_l2(&a, &b), 0.0);
    assert!(relative_l2(&a, &c) > 1e-2);
}

/// Multilingual's `s3gen.pt` (a torch zip of the same state dict) loads
/// into the same model.
#[test]
fn torch_zip_checkpoint_loads_the_same_model() {
    let g = Goldens::load("s3gen_goldens.safetensors");
    let model = S3Gen::load(&fixture("s3gen.pt"), &config(), &Device::Cpu, DType::F32)
        .expect("s3gen.pt loads");
    let mel = model
        .flow(
            &g.prompt(),
            &g.tokens("speech_tokens"),
            g.get("noise"),
            10,
            &mut |_, _| {},
        )
        .unwrap();
    check("mel from s3gen.pt", &mel.squeeze(0).unwrap(), g.get("mel"));
}

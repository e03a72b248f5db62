//! T3 against the reference (`chatterbox-tts` 0.1.7) on small random
//! weights: goldens from `tools/make_t3_goldens.py`. The conditioning
//! (speaker projection, perceiver, emotion) and the speech logits at the
//! first steps and the last, both CFG rows, within 1e-4 relative; the
//! greedy speech tokens identical on every case.
//!
//! `VIVACE_T3_FIXTURE=DIR` runs the same checks on goldens written to `DIR`.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde::Deserialize;
use vivace_models::chatterbox::t3::{
    DecodeParams, Finish, Precision, T3Conditioning, T3Prefix, T3Variant, T3,
};
use vivace_models::nn::sampling::SeededSource;

mod common;

use common::check_within;

/// Relative L2 of the conditioning and of each step's logits.
const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    common::fixture("t3", Some("VIVACE_T3_FIXTURE"), name)
}

#[derive(Deserialize)]
struct Case {
    cfg_weight: f32,
    exaggeration: f32,
    max_new_tokens: usize,
    logit_steps: Vec<usize>,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
    temperature: f32,
    repetition_penalty: f32,
    min_p: f32,
    top_p: f32,
    #[serde(default)]
    top_k: usize,
}

fn goldens() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("goldens.safetensors"), &Device::Cpu).expect("goldens")
}

fn ids(goldens: &HashMap<String, Tensor>, name: &str) -> Vec<u32> {
    let v: Vec<i64> = goldens[name].to_vec1().expect("int64 ids");
    v.into_iter().map(|t| t as u32).collect()
}

fn source() -> Box<SeededSource> {
    Box::new(SeededSource::new(0))
}

fn load(precision: Precision) -> T3 {
    T3::load(&fixture("t3_cfg.safetensors"), &Device::Cpu, precision).expect("T3 loads")
}

#[test]
fn the_architecture_is_read_from_the_checkpoint() {
    let t3 = load(Precision::F32);
    let c = t3.config();
    assert_eq!(c.variant, T3Variant::English);
    assert_eq!(
        (c.backbone.hidden, c.backbone.layers, c.backbone.heads),
        (64, 2, 1)
    );
    assert_eq!(c.backbone.intermediate, 128);
    assert_eq!((c.text_vocab, c.speech_vocab), (704, 6563));
}

#[test]
fn conditioning_matches_the_reference() {
    let goldens = goldens();
    let t3 = load(Precision::F32);
    // conds.pt holds case 0's conditioning, in the published layout.
    let cond = T3Conditioning::from_conds(&fixture("conds.pt")).expect("conds.pt");
    assert_eq!(cond.prompt_tokens, ids(&goldens, "prompt_tokens"));
    assert_eq!(cond.exaggeration, 0.5);
    let got = t3.conditioning(&cond).expect("conditioning");
    check_within(
        "conditioning",
        &got.squeeze(0).expect("batch"),
        &goldens["cond_embeds"],
        TOLERANCE,
    );
}

/// Decodes every case of `dir`'s goldens greedily and checks the logits
/// at the recorded steps and the tokens; returns how each case ended.
fn check_greedy_cases(dir: &str, checkpoint: &str, t3: &T3) -> Vec<Finish> {
    let env = (dir == "t3").then_some("VIVACE_T3_FIXTURE");
    let path = |name: &str| common::fixture(dir, env, name);
    let goldens =
        candle_core::safetensors::load(path("goldens.safetensors"), &Device::Cpu).expect("goldens");
    let cases: Cases =
        serde_json::from_str(&std::fs::read_to_string(path("cases.json")).expect("cases"))
            .expect("cases parse");
    assert!(path(checkpoint).is_file());
    let base = T3Conditioning::from_conds(&path("conds.pt")).expect("conds.pt");
    let vocab = t3.config().speech_vocab;
    let mut finishes = Vec::new();
    // The first case of each exaggeration runs its whole prompt and keeps
    // the voice's prefix; the later ones continue that prefix (as a voice's
    // sentences do). Each gives its own reference tokens either way, so a
    // kept prefix equals the whole prompt's and continuing leaves it as it
    // was.
    let mut prefixes: Vec<(f32, T3Prefix)> = Vec::new();
    for (i, case) in cases.cases.iter().enumerate() {
        let cond = T3Conditioning {
            exaggeration: case.exaggeration,
            ..base.clone()
        };
        let params = DecodeParams {
            cfg_weight: case.cfg_weight,
            // The reference divides by its temperature; greedy picks the
            // same token whatever it is, and the goldens used argmax.
            temperature: 0.0,
            repetition_penalty: cases.repetition_penalty,
            min_p: cases.min_p,
            top_p: cases.top_p,
            top_k: cases.top_k,
            max_tokens: case.max_new_tokens,
        };
        assert!(cases.temperature > 0.0);
        let text = ids(&goldens, &format!("case{i}.text_ids"));
        let source = || Box::new(SeededSource::new(0));
        let kept = prefixes.iter().find(|(e, _)| *e == case.exaggeration);
        let mut generation = match kept {
            Some((_, prefix)) => t3
                .start_after(prefix, &text, &params, source())
                .expect("prefill after the prefix"),
            None => {
                let conditioning = t3.conditioning(&cond).expect("conditioning");
                let (generation, prefix) = t3
                    .start_keeping_prefix(&conditioning, &text, &params, source())
                    .expect("prefill");
                prefixes.push((case.exaggeration, prefix));
                generation
            }
        };
        let mut step = 0;
        loop {
            if case.logit_steps.contains(&step) {
                let rows = generation.logits().len() / vocab;
                let got = Tensor::from_slice(generation.logits(), (rows, vocab), &Device::Cpu)
                    .expect("logits");
                check_within(
                    &format!("{dir} case {i} step {step} logits"),
                    &got,
                    &goldens[&format!("case{i}.logits{step}")],
                    TOLERANCE,
                );
            }
            match t3.next_token(&mut generation).expect("step") {
                Some(_) => step += 1,
                None => break,
            }
        }
        let want = ids(&goldens, &format!("case{i}.speech_tokens"));
        let mut got = generation.generated();
        if t3.config().variant == T3Variant::Turbo && got.last() == Some(&6562) {
            got = &got[..got.len() - 1]; // inference_turbo drops the stop token
        }
        assert_eq!(got, want.as_slice(), "{dir} case {i} tokens");
        finishes.push(generation.finish().expect("ended"));
    }
    finishes
}

#[test]
fn greedy_decoding_matches_the_reference_token_for_token() {
    let finishes = check_greedy_cases("t3", "t3_cfg.safetensors", &load(Precision::F32));
    assert!(finishes.iter().all(|&f| f == Finish::MaxTokens));
}

#[test]
fn the_multilingual_model_decodes_as_the_reference_with_its_alignment_analyzer() {
    // Seven languages (fr, de, es, ko, hi, ar, en); in three of them the
    // analyzer sees earlier text attended again after the end and forces
    // the stop token, as the reference does; the others run to their cap
    // with the stop token held back.
    let path = common::fixture("t3_mtl", None, "t3_mtl23ls_v2.safetensors");
    let t3 = T3::load(&path, &Device::Cpu, Precision::F32).expect("multilingual T3 loads");
    assert_eq!(t3.config().variant, T3Variant::Multilingual);
    assert_eq!(t3.config().aligned_heads, vec![(0, 0), (1, 0), (1, 0)]);
    let finishes = check_greedy_cases("t3_mtl", "t3_mtl23ls_v2.safetensors", &t3);
    let stops = finishes.iter().filter(|&&f| f == Finish::Stop).count();
    assert_eq!(stops, 3, "{finishes:?}");
}

#[test]
fn bad_inputs_are_errors_that_name_them() {
    let t3 = load(Precision::F32);
    let cond = T3Conditioning::from_conds(&fixture("conds.pt")).expect("conds.pt");
    let conditioning = t3.conditioning(&cond).expect("conditioning");
    let params = DecodeParams::defaults(T3Variant::English);
    let too_long = vec![14u32; t3.config().text_positions];
    let err = t3
        .start(&conditioning, &too_long, &params, source())
        .expect_err("too long");
    assert!(err.to_string().contains("split it"), "{err}");
    let err = t3
        .start(&conditioning, &[9999], &params, source())
        .expect_err("bad id");
    assert!(err.to_string().contains("9999"), "{err}");
    let bad = DecodeParams {
        top_p: 0.0,
        ..params.clone()
    };
    assert!(t3.start(&conditioning, &[14], &bad, source()).is_err());
    let err = T3::load(&fixture("tokenizer.json"), &Device::Cpu, Precision::F32).expect_err("json");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

/// Three sentences of different lengths and settings (one without
/// guidance), sampled with their own seeds: stepped as one batch, each
/// gives the tokens it gives alone.
fn check_batched_decoding(dir: &str, checkpoint: &str) {
    let path = |name: &str| common::fixture(dir, None, name);
    let goldens =
        candle_core::safetensors::load(path("goldens.safetensors"), &Device::Cpu).expect("goldens");
    let t3 = T3::load(&path(checkpoint), &Device::Cpu, Precision::F32).expect("T3 loads");
    let cond = T3Conditioning::from_conds(&path("conds.pt")).expect("conds.pt");
    let conditioning = t3.conditioning(&cond).expect("conditioning");
    let variant = t3.config().variant;
    let settings = [(0.5, 24), (0.0, 30), (0.3, 18)];
    let start = |i: usize| {
        let (cfg_weight, max_tokens) = settings[i];
        let params = DecodeParams {
            cfg_weight,
            max_tokens,
            ..DecodeParams::defaults(variant)
        };
        let text = ids(&goldens, &format!("case{i}.text_ids"));
        t3.start(
            &conditioning,
            &text,
            &params,
            Box::new(SeededSource::new(i as u64)),
        )
        .expect("prefill")
    };
    let alone: Vec<Vec<u32>> = (0..3)
        .map(|i| {
            let mut g = start(i);
            while t3.next_token(&mut g).expect("step").is_some() {}
            g.generated().to_vec()
        })
        .collect();
    let mut together: Vec<_> = (0..3).map(start).collect();
    loop {
        let mut batch: Vec<&mut _> = together.iter_mut().collect();
        let drawn = t3.step(&mut batch).expect("batched step");
        if drawn.iter().all(Option::is_none) {
            break;
        }
    }
    for (i, g) in together.iter().enumerate() {
        assert_eq!(g.generated(), alone[i].as_slice(), "{dir} sequence {i}");
        assert!(!g.generated().is_empty());
    }
}

#[test]
fn sequences_decoded_together_match_each_decoded_alone() {
    check_batched_decoding("t3", "t3_cfg.safetensors");
    // GPT-2's learned positions: each sequence at its own.
    check_batched_decoding("t3_turbo", "t3_turbo_v1.safetensors");
}

#[test]
fn turbo_decodes_as_the_reference() {
    // GPT-2 backbone, no guidance, the sampler's Turbo order (temperature,
    // top-k 1000, top-p 0.95, then the penalty over the generated tokens).
    let path = common::fixture("t3_turbo", None, "t3_turbo_v1.safetensors");
    let t3 = T3::load(&path, &Device::Cpu, Precision::F32).expect("Turbo T3 loads");
    let c = t3.config();
    assert_eq!(c.variant, T3Variant::Turbo);
    assert_eq!(
        (c.backbone.hidden, c.backbone.layers, c.backbone.heads),
        (64, 2, 1)
    );
    assert_eq!(c.backbone.intermediate, 256);
    assert!(c.aligned_heads.is_empty());
    check_greedy_cases("t3_turbo", "t3_turbo_v1.safetensors", &t3);
}

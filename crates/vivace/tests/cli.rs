//! The `vivace` binary end to end: outputs, Piper's flags, and bad input.

use std::path::Path;
use std::process::{Output, Stdio};

use crate::util::{
    default_voice, golden_waveform, goldens, relative_l2, scratch, stderr, validate_check, vivace,
};

/// Runs `vivace say --voice DEFAULT ARGS…` with `stdin` as input.
fn say(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let voice = default_voice().to_str().expect("UTF-8 cache path");
    let mut child = vivace()
        .arg("say")
        .args(["--voice", voice])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vivace");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("run vivace")
}

fn read_wav_f32(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let reader = hound::WavReader::open(path).expect("open WAV");
    let spec = reader.spec();
    let samples = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .map(|s| s.expect("sample"))
            .collect(),
        hound::SampleFormat::Int => reader
            .into_samples::<i16>()
            .map(|s| f32::from(s.expect("sample")) / 32767.0)
            .collect(),
    };
    (spec, samples)
}

/// The sentence "Hello world." and its golden (noise 0, length scale 1).
fn hello_golden() -> Vec<f32> {
    let g = goldens();
    let case = &g["cases"][0];
    assert_eq!(case["text"], "Hello world.");
    golden_waveform(
        case["sentences"][0]["renders"][0]["file"]
            .as_str()
            .expect("file"),
    )
}

#[test]
fn writes_a_wav_equal_to_piper_with_noise_off() {
    let dir = scratch();
    let out = dir.path().join("hello.wav");
    let o = say(
        &[
            "Hello world.",
            "-f",
            out.to_str().expect("path"),
            "--noise-scale",
            "0",
            "--noise-w-scale",
            "0",
            "--no-normalize",
            "--sample-format",
            "f32",
            "-v",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("real-time factor"), "{}", stderr(&o));
    let (spec, samples) = read_wav_f32(&out);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (22050, 1, 32)
    );
    let err = relative_l2(&samples, &hello_golden());
    assert!(err <= 1e-3, "relative L2 error {err:.3e}");
}

#[test]
fn default_output_is_normalized_16_bit_from_stdin() {
    let dir = scratch();
    let out = dir.path().join("stdin.wav");
    let o = say(&["-f", out.to_str().expect("path")], b"Hello world.\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let (spec, samples) = read_wav_f32(&out);
    assert_eq!(
        (spec.bits_per_sample, spec.sample_format),
        (16, hound::SampleFormat::Int)
    );
    let peak = samples.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(peak > 0.999, "peak-normalized like Piper, got peak {peak}");
}

#[test]
fn raw_output_streams_16_bit_samples_with_silence_between_sentences() {
    let o = say(
        &[
            "--output-raw",
            "--sentence-silence",
            "0.5",
            "--noise-scale",
            "0",
            "--noise-w-scale",
            "0",
        ],
        b"Hello world. Hello world.",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let one = hello_golden().len();
    assert_eq!(
        o.stdout.len(),
        2 * (2 * one + 11025),
        "two sentences and 0.5 s of silence"
    );
}

#[test]
fn empty_text_exits_2_and_writes_nothing() {
    let dir = scratch();
    let out = dir.path().join("empty.wav");
    for (args, stdin) in [(vec![" \t "], &b""[..]), (vec![], &b"  \n\n "[..])] {
        let mut args = args;
        args.extend(["-f", out.to_str().expect("path")]);
        let o = say(&args, stdin);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

#[test]
fn unspeakable_characters_are_skipped_not_fatal() {
    let dir = scratch();
    let out = dir.path().join("emoji.wav");
    let o = say(
        &[
            "Hello 😀 world\u{7}\u{1b}!",
            "-f",
            out.to_str().expect("path"),
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
}

#[test]
fn non_utf8_input_is_a_clear_error() {
    let dir = scratch();
    let input = dir.path().join("latin1.txt");
    std::fs::write(&input, b"caf\xe9 au lait").expect("write input");
    let out = dir.path().join("x.wav");
    let o = say(
        &[
            "-i",
            input.to_str().expect("path"),
            "-f",
            out.to_str().expect("path"),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not valid UTF-8"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn unwritable_output_is_an_error_and_leaves_no_file() {
    let dir = scratch();
    let out = dir.path().join("no-such-dir").join("x.wav");
    let o = say(&["Hello.", "-f", out.to_str().expect("path")], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no-such-dir"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn a_runaway_length_scale_is_a_clear_error_not_a_panic() {
    let dir = scratch();
    let out = dir.path().join("x.wav");
    // 1e30 overflowed a Vec (a panic); 1e6 meant an hours-long decoder run.
    for scale in ["1e30", "1e6"] {
        let o = say(
            &[
                "Hi.",
                "--length-scale",
                scale,
                "--noise-w-scale",
                "0",
                "-f",
                out.to_str().expect("path"),
            ],
            b"",
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "--length-scale {scale}: {err}");
        assert!(err.contains("--length-scale"), "{err}");
        assert_eq!(err.matches("would last").count(), 1, "said once: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn unknown_speaker_lists_the_valid_ones() {
    let dir = scratch();
    let out = dir.path().join("x.wav");
    let o = say(
        &["Hello.", "-s", "7", "-f", out.to_str().expect("path")],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("single speaker (0)"), "{}", stderr(&o));
    assert!(!out.exists());
}

/// Copies the default voice into `dir` as `v.onnx` + `v.onnx.json`.
fn copy_voice(dir: &Path) -> std::path::PathBuf {
    let onnx = dir.join("v.onnx");
    std::fs::copy(default_voice(), &onnx).expect("copy onnx");
    let json = vivace_models::piper::PiperVoice::config_path(default_voice());
    std::fs::copy(json, dir.join("v.onnx.json")).expect("copy json");
    onnx
}

/// Runs `vivace say "Hello." --voice VOICE -f OUT EXTRA…`.
fn say_with_voice(voice: &Path, out: &Path, extra: &[&str]) -> Output {
    vivace()
        .args(["say", "Hello.", "--voice"])
        .arg(voice)
        .arg("-f")
        .arg(out)
        .args(extra)
        .output()
        .expect("run vivace")
}

#[test]
fn broken_voice_files_are_errors_naming_the_file() {
    let dir = scratch();
    let onnx = copy_voice(dir.path());
    let out = dir.path().join("x.wav");
    let full = std::fs::read(&onnx).expect("read onnx");

    // Truncated model.
    std::fs::write(&onnx, &full[..full.len() / 3]).expect("truncate");
    let o = say_with_voice(&onnx, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("v.onnx"), "{}", stderr(&o));

    // Not a model at all.
    std::fs::write(&onnx, b"this is not protobuf at all").expect("corrupt");
    let o = say_with_voice(&onnx, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("v.onnx"), "{}", stderr(&o));

    // A config that does not match the model.
    std::fs::write(&onnx, &full).expect("restore");
    let json_path = dir.path().join("v.onnx.json");
    let json = std::fs::read_to_string(&json_path).expect("read json");
    std::fs::write(
        &json_path,
        json.replace("\"num_symbols\": 256", "\"num_symbols\": 300"),
    )
    .expect("edit json");
    let o = say_with_voice(&onnx, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("num_symbols"), "{}", stderr(&o));

    // Missing config.
    std::fs::remove_file(&json_path).expect("remove json");
    let o = say_with_voice(&onnx, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("v.onnx.json"), "{}", stderr(&o));
    assert!(!out.exists());
}

/// Piper's CLI speaks each input line on its own: the sentence silence goes
/// between the sentences of a line, not between lines.
#[test]
fn each_input_line_is_spoken_on_its_own() {
    let o = say(
        &[
            "--output-raw",
            "--sentence-silence",
            "0.5",
            "--noise-scale",
            "0",
            "--noise-w-scale",
            "0",
        ],
        b"Hello world.\n\n  Hello world.  \n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), 2 * 2 * hello_golden().len());
}

#[test]
fn wav_to_stdout_with_dash() {
    let o = say(
        &[
            "Hello world.",
            "-f",
            "-",
            "--noise-scale",
            "0",
            "--noise-w-scale",
            "0",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let reader = hound::WavReader::new(std::io::Cursor::new(o.stdout)).expect("a WAV on stdout");
    assert_eq!(reader.duration() as usize, hello_golden().len());
}

#[test]
fn validate_passes_on_this_machine() {
    default_voice();
    let o = vivace()
        .args(["validate", "--json", "--device", "cpu"])
        .output()
        .expect("run vivace");
    assert!(
        o.status.success(),
        "{}\n{}",
        stderr(&o),
        String::from_utf8_lossy(&o.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(report["failed"], 0);
    assert!(report["checks"].as_array().expect("checks").len() >= 9);
    assert_eq!(validate_check(&report, "end to end")["status"], "PASS");
}

/// bf16, f16 and int8 apply to the decoder only, and stay within the
/// bounds `validate` states for them (bf16 over the whole model was
/// measured at 0.55 relative error, far outside).
#[test]
fn reduced_precision_decoder_validates_within_its_bound() {
    default_voice();
    for (precision, limit) in [
        ("bf16", "limit 3.1e-2"),
        ("f16", "limit 6.0e-3"),
        ("int8", "limit 1.0e-1"),
    ] {
        let o = vivace()
            .args(["validate", "--json", "--device", "cpu"])
            .env("VIVACE_PRECISION", precision)
            .output()
            .expect("run vivace");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
        let end_to_end = validate_check(&report, "end to end");
        assert!(o.status.success(), "{precision}: {report}");
        assert_eq!(end_to_end["status"], "PASS", "{precision}: {end_to_end}");
        let detail = end_to_end["detail"].as_str().expect("detail");
        assert!(detail.contains(limit), "{precision}: {detail}");
        // The reduced precision was applied: f32 gives 2.5e-5.
        let error: f64 = detail
            .split("relative L2 error ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|e| e.parse().ok())
            .unwrap_or_else(|| panic!("no error figure in {detail}"));
        // int8 applies only where a VNNI kernel runs (else f32, warned).
        if precision != "int8" || vivace_models::nn::cpu_gemm_int8::available() {
            assert!(error > 1e-4, "{precision}: {error:e} is f32's error");
        }
    }
}

/// A precision that does not exist is refused by name, with the ones that do.
#[test]
fn an_unknown_precision_is_refused_with_the_choices() {
    let o = vivace()
        .args(["say", "--precision", "fp8", "-f", "/dev/null", "Hello."])
        .output()
        .expect("run vivace");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--precision") && err.contains("int8"), "{err}");
}

#[test]
fn multi_speaker_voice_by_speaker_name_and_16khz_voice() {
    let dir = scratch();
    let voices = crate::util::fixtures().join("voices");
    let out = dir.path().join("carol.wav");
    // Seeded: the random-weight voice's stochastic durations, on fresh
    // noise, exceed the 8,192-frame cap in about one run in thirty.
    let o = say_with_voice(
        &voices.join("tiny-multi-rb1.onnx"),
        &out,
        &["-s", "carol", "--seed", "1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_wav_f32(&out).0.sample_rate, 22050);

    let out = dir.path().join("xlow.wav");
    let o = say_with_voice(&voices.join("tiny-single-rb2-dp.onnx"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_wav_f32(&out).0.sample_rate, 16000);
}

#[test]
fn bench_quick_reports_both_variants_as_json() {
    let dir = scratch();
    let json = dir.path().join("bench.json");
    let voice = default_voice().to_str().expect("UTF-8 path");
    let o = vivace()
        .args([
            "bench", "--quick", "--device", "cpu", "--voice", voice, "--json",
        ])
        .arg(&json)
        .env("VIVACE_BATCH_SIZE", "1")
        .output()
        .expect("run vivace");
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 4, "baseline and optimized on two workloads");
    for r in results {
        assert!(r["p50_s"].as_f64().expect("p50") > 0.0);
        assert!(r["audio_s"].as_f64().expect("audio") > 0.5);
    }
    assert!(report["speedup"].as_f64().expect("speedup") > 0.0);
    assert!(
        report["hardware"]["cpu"]["physical_cores"]
            .as_u64()
            .expect("cores")
            >= 1
    );
}

/// `bench --t3` times T3's decode at the published shapes (random
/// weights) and reports each batch's rate as JSON; a zero token count is
/// a clear error, not a panic.
#[test]
fn bench_t3_reports_decode_rates_by_batch() {
    let dir = scratch();
    let json = dir.path().join("t3.json");
    let o = vivace()
        .args([
            "bench",
            "--t3",
            "--quick",
            "--device",
            "cpu",
            "--t3-batches",
            "1,2",
            "--t3-tokens",
            "2",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("run vivace");
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    for (row, batch) in rows.iter().zip([1, 2]) {
        assert_eq!(row["batch"], batch);
        assert!(row["tokens"].as_u64().expect("tokens") >= 1);
        assert!(row["tokens_per_s"].as_f64().expect("rate") > 0.0);
    }
    assert_eq!(report["device"], "cpu");
    let o = vivace()
        .args(["bench", "--t3", "--device", "cpu", "--t3-tokens", "0"])
        .output()
        .expect("run vivace");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--t3-tokens") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn mms_checkpoint_speaks_through_the_cli_and_is_listed_when_installed() {
    let dir = scratch();
    let mms = crate::util::fixtures().join("mms");
    // A checkpoint directory given as --voice: its 16 kHz, its speakers.
    let out = dir.path().join("mms.wav");
    let o = say_with_voice(&mms.join("tiny-sdp"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (spec, samples) = read_wav_f32(&out);
    assert_eq!(spec.sample_rate, 16000);
    assert!(samples.iter().any(|&s| s != 0.0));
    let o = say_with_voice(&mms.join("tiny-dp-multi"), &out, &["-s", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_wav_f32(&out).0.sample_rate, 22050);
    let o = say_with_voice(&mms.join("tiny-dp-multi"), &out, &["-s", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("3 speaker(s)"), "{}", stderr(&o));

    // Installed in the cache, it is found by name and listed.
    let cache = dir.path().join("cache");
    let installed = cache.join("vivace/voices/tiny");
    std::fs::create_dir_all(&installed).expect("mkdir");
    for entry in std::fs::read_dir(mms.join("tiny-sdp")).expect("read fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), installed.join(entry.file_name())).expect("copy");
    }
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .args(["voices", "--json"])
        .output()
        .expect("run vivace");
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(list[0]["name"], "tiny");
    assert_eq!(list[0]["format"], "mms");
    assert_eq!(list[0]["language"], "eng");
    assert_eq!(list[0]["sample_rate"], 16000);
    let o = vivace()
        .env("XDG_CACHE_HOME", &cache)
        .args(["say", "Hi there.", "--voice", "tiny", "-f"])
        .arg(&out)
        .output()
        .expect("run vivace");
    assert!(o.status.success(), "{}", stderr(&o));

    // Text with nothing this voice can say is an error naming the problem.
    let o = vivace()
        .args(["say", "¿¡!?", "--voice"])
        .arg(mms.join("tiny-sdp"))
        .arg("-f")
        .arg(&out)
        .output()
        .expect("run vivace");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("vocabulary"), "{}", stderr(&o));
}

#[test]
fn a_seed_makes_noisy_speech_reproducible() {
    let dir = scratch();
    let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    for out in [&a, &b] {
        let o = say(
            &[
                "Hello there.",
                "--seed",
                "7",
                "-f",
                out.to_str().expect("path"),
            ],
            b"",
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "the same seed gave different audio"
    );
}

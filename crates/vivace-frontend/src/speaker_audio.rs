//! Reference recordings for the voice encoder, prepared as resemblyzer's
//! `preprocess_wav` prepares them: read as `librosa.load(path, sr=None)` does
//! (mono float samples, integer PCM scaled by `2^(bits-1)`, channels
//! averaged), resampled to 16 kHz ([`crate::resample`]), raised to −30 dBFS,
//! and long silences trimmed ([`crate::silence`]).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The loudness resemblyzer normalises to, in dBFS (`audio_norm_target_dBFS`).
pub const TARGET_DBFS: f64 = -30.0;

/// The voice encoder's sample rate.
pub const ENCODER_SAMPLE_RATE: u32 = 16_000;

/// What [`read_wav`] accepts, for error messages.
const SUPPORTED: &str = "use a WAV file of 8/16/24/32-bit PCM or 32-bit float samples";

/// Lowest sample rate a recording may have (telephone audio is 8 kHz).
pub const MIN_SAMPLE_RATE: u32 = 4_000;
/// Highest sample rate a recording may have; a header beyond it is broken
/// or hostile (resampling from it would need gigabytes).
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// A recording read for the voice encoder: mono samples and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Mono samples in [-1, 1].
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadAudio {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

/// Reads a WAV file: 8/16/24/32-bit PCM or 32-bit float, any number of
/// channels (averaged to mono). Errors name the file: not a WAV, an
/// unsupported sample format, no samples, or a sample that is not finite.
pub fn read_wav(path: &Path) -> Result<Recording> {
    let file =
        std::fs::File::open(path).map_err(|e| bad(path, format!("cannot read the file ({e})")))?;
    read_wav_from(std::io::BufReader::new(file), path)
}

/// [`read_wav`] from any reader (an upload, for example); `path` names the
/// recording in errors.
pub fn read_wav_from(input: impl std::io::Read, path: &Path) -> Result<Recording> {
    let reader = hound::WavReader::new(input).map_err(|e| {
        bad(
            path,
            match e {
                hound::Error::Unsupported => format!("unsupported WAV sample format: {SUPPORTED}"),
                other => format!("not a readable WAV file ({other}): {SUPPORTED}"),
            },
        )
    })?;
    let spec = reader.spec();
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
        return Err(bad(
            path,
            format!(
                "the header gives a sample rate of {} Hz; recordings from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz are read",
                spec.sample_rate
            ),
        ));
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(path, format!("corrupt samples ({e})")))?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(path, format!("corrupt samples ({e})")))?
        }
        (format, bits) => {
            return Err(bad(
                path,
                format!("{bits}-bit {format:?} samples are not supported: {SUPPORTED}"),
            ))
        }
    };
    if interleaved.is_empty() {
        return Err(bad(path, "the file has no samples"));
    }
    if let Some(i) = interleaved.iter().position(|s| !s.is_finite()) {
        return Err(bad(
            path,
            format!("sample {} is not a finite number", i / channels),
        ));
    }
    let samples = match channels {
        1 => interleaved,
        _ => interleaved
            .chunks(channels)
            .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
            .collect(),
    };
    Ok(Recording {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// resemblyzer's `normalize_volume(wav, target_dbfs, increase_only=True)`:
/// scales `samples` so their RMS sits at `target_dbfs`, but never makes them
/// quieter. Silence cannot be normalised: an error (`what` names the input).
pub fn normalize_volume(samples: &mut [f32], target_dbfs: f64, what: &Path) -> Result<()> {
    // resemblyzer scales by 32767 before the RMS and divides it out after:
    // the same level relative to full scale.
    let mean_square =
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    if mean_square == 0.0 {
        return Err(bad(
            what,
            "the recording is silent: there is no voice to embed",
        ));
    }
    let dbfs = 10.0 * mean_square.log10();
    let change = target_dbfs - dbfs;
    if change < 0.0 {
        return Ok(());
    }
    let gain = 10f64.powf(change / 20.0);
    samples
        .iter_mut()
        .for_each(|s| *s = (f64::from(*s) * gain) as f32);
    Ok(())
}

/// resemblyzer's `preprocess_wav` on the WAV file at `path`: 16 kHz mono
/// samples at −30 dBFS or louder, long silences removed. Errors name the
/// file: unreadable, silent, or without any speech the detector accepts.
pub fn preprocess(path: &Path) -> Result<Vec<f32>> {
    preprocess_recording(read_wav(path)?, path)
}

/// [`preprocess`] on a recording already in memory (`what` names it in errors).
pub fn preprocess_recording(recording: Recording, what: &Path) -> Result<Vec<f32>> {
    let mut samples = crate::resample::resample(
        &recording.samples,
        recording.sample_rate,
        ENCODER_SAMPLE_RATE,
    )?;
    normalize_volume(&mut samples, TARGET_DBFS, what)?;
    let trimmed = crate::silence::trim_long_silences(&samples);
    if trimmed.is_empty() {
        return Err(bad(
            what,
            "no speech found: the voice detector heard only silence or noise",
        ));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, frames: &[Vec<f64>]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for frame in frames {
            for &v in frame {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(v as f32).expect("write"),
                    hound::SampleFormat::Int => {
                        let scale = (1i64 << (spec.bits_per_sample - 1)) as f64;
                        w.write_sample((v * scale) as i32).expect("write")
                    }
                }
            }
        }
        w.finalize().expect("finalize");
    }

    #[test]
    fn reads_pcm_and_float_and_mixes_channels_down() {
        let dir = tempfile::tempdir().expect("temp dir");
        let frames = vec![vec![0.5, -0.25], vec![-0.5, 0.25]];
        for (bits, format) in [
            (16, hound::SampleFormat::Int),
            (24, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
        ] {
            let path = dir.path().join(format!("{bits}{format:?}.wav"));
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 22050,
                bits_per_sample: bits,
                sample_format: format,
            };
            write(&path, spec, &frames);
            let rec = read_wav(&path).expect("read");
            assert_eq!(rec.sample_rate, 22050);
            assert_eq!(rec.samples.len(), 2);
            assert!(
                (rec.samples[0] - 0.125).abs() < 1e-4,
                "{bits} {format:?}: {:?}",
                rec.samples
            );
            assert!((rec.samples[1] + 0.125).abs() < 1e-4);
        }
    }

    #[test]
    fn bad_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = dir.path().join("notes.wav");
        std::fs::write(&text, "not audio").expect("write");
        let err = read_wav(&text).expect_err("not a WAV").to_string();
        assert!(
            err.contains("notes.wav") && err.contains("not a readable WAV"),
            "{err}"
        );
        let nan = dir.path().join("nan.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write(&nan, spec, &[vec![0.1], vec![f64::NAN]]);
        let err = read_wav(&nan).expect_err("NaN").to_string();
        assert!(err.contains("sample 1 is not a finite"), "{err}");
        let empty = dir.path().join("empty.wav");
        write(&empty, spec, &[]);
        assert!(read_wav(&empty)
            .expect_err("empty")
            .to_string()
            .contains("no samples"));
    }

    /// resemblyzer's formula: −30 dBFS is an RMS of 10^(−1.5) of full scale.
    #[test]
    fn volume_is_raised_to_the_target_but_never_lowered() {
        let quiet: Vec<f32> = (0..1000)
            .map(|i| if i % 2 == 0 { 0.001 } else { -0.001 })
            .collect();
        let mut raised = quiet.clone();
        normalize_volume(&mut raised, TARGET_DBFS, Path::new("q.wav")).expect("normalize");
        let rms = (raised.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / 1000.0).sqrt();
        assert!((rms - 10f64.powf(-1.5)).abs() < 1e-6, "rms {rms}");
        let mut loud = vec![0.5f32; 100];
        normalize_volume(&mut loud, TARGET_DBFS, Path::new("l.wav")).expect("normalize");
        assert_eq!(loud, vec![0.5f32; 100]);
        let mut silent = vec![0f32; 10];
        let err =
            normalize_volume(&mut silent, TARGET_DBFS, Path::new("s.wav")).expect_err("silent");
        assert!(err.to_string().contains("s.wav"), "{err}");
    }
}

//! Audio post-processing and output, as Piper 1.8 does it.
//!
//! Mirrors `PiperVoice.synthesize` and `AudioChunk` of
//! [piper 1.8](https://github.com/OHF-Voice/piper1-gpl/blob/main/src/piper/voice.py)
//! and its CLI's WAV writing: each sentence is peak-normalized (unless turned
//! off), scaled by the volume, clipped to `[-1, 1]`, and converted to 16-bit
//! by truncation; `sentence_silence` seconds of zeros go *between* sentences.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Largest 16-bit sample value Piper uses (`_MAX_WAV_VALUE`).
const MAX_WAV_VALUE: f32 = 32767.0;

/// How each sentence's float audio is turned into output samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostProcess {
    /// Scale each sentence so its peak is 1 (Piper's default).
    pub normalize: bool,
    /// Multiplier applied after normalization (Piper's `--volume`, default 1).
    pub volume: f32,
}

impl Default for PostProcess {
    fn default() -> Self {
        Self {
            normalize: true,
            volume: 1.0,
        }
    }
}

impl PostProcess {
    /// Normalizes, scales and clips one sentence in place.
    pub fn apply(&self, audio: &mut [f32]) {
        if self.normalize {
            let peak = audio.iter().fold(0f32, |m, &v| m.max(v.abs()));
            if peak < 1e-8 {
                audio.fill(0.0);
            } else {
                audio.iter_mut().for_each(|v| *v /= peak);
            }
        }
        let volume = self.volume;
        audio
            .iter_mut()
            .for_each(|v| *v = (*v * volume).clamp(-1.0, 1.0));
    }
}

/// A float sample in `[-1, 1]` as Piper's 16-bit value (scaled, truncated).
pub fn to_i16(sample: f32) -> i16 {
    (sample * MAX_WAV_VALUE).clamp(-MAX_WAV_VALUE, MAX_WAV_VALUE) as i16
}

/// Sample format of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleFormat {
    /// 16-bit signed PCM, as Piper writes.
    #[default]
    I16,
    /// 32-bit IEEE float, for exact comparisons.
    F32,
}

/// Where synthesized sentences go, one at a time.
pub trait AudioSink {
    /// Appends samples (already post-processed, in `[-1, 1]`).
    fn write(&mut self, samples: &[f32]) -> Result<()>;
    /// Completes the output; until then nothing is visible at its final path.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Where a finished WAV goes.
enum WavTarget {
    /// Renamed from a temporary file beside it to `path`.
    File {
        path: PathBuf,
        temp: tempfile::TempPath,
    },
    /// Copied to stdout from an anonymous temporary file (`-f -`).
    Stdout { file: File },
}

/// A mono WAV written to a temporary file and only then moved into place (or
/// copied to stdout): an error or interruption leaves no partial file, and the
/// header, which needs the final length, is right.
pub struct WavSink {
    target: WavTarget,
    writer: hound::WavWriter<BufWriter<File>>,
    format: SampleFormat,
    name: PathBuf,
}

/// The name stdout goes by in messages.
const STDOUT: &str = "<stdout>";

impl WavSink {
    /// Starts a WAV for `path`, written to a temporary file in the same folder.
    pub fn create(path: &Path, sample_rate: u32, format: SampleFormat) -> Result<Self> {
        let write_err = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let prefix = format!(".{}.", name.as_deref().unwrap_or("vivace"));
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        // Temporary files are private (0600); the finished WAV should get the
        // permissions any new file gets (0666 less the umask), as Piper's does.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder.tempfile_in(dir).map_err(write_err)?;
        let (file, temp) = temp.into_parts();
        let target = WavTarget::File {
            path: path.to_path_buf(),
            temp,
        };
        Self::start(file, target, path.to_path_buf(), sample_rate, format)
    }

    /// Starts a WAV that [`AudioSink::finish`] copies to stdout.
    pub fn stdout(sample_rate: u32, format: SampleFormat) -> Result<Self> {
        let file = tempfile::tempfile().map_err(|source| Error::Write {
            path: STDOUT.into(),
            source,
        })?;
        let copy = file.try_clone().map_err(|source| Error::Write {
            path: STDOUT.into(),
            source,
        })?;
        Self::start(
            copy,
            WavTarget::Stdout { file },
            STDOUT.into(),
            sample_rate,
            format,
        )
    }

    fn start(
        file: File,
        target: WavTarget,
        name: PathBuf,
        sample_rate: u32,
        format: SampleFormat,
    ) -> Result<Self> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: match format {
                SampleFormat::I16 => 16,
                SampleFormat::F32 => 32,
            },
            sample_format: match format {
                SampleFormat::I16 => hound::SampleFormat::Int,
                SampleFormat::F32 => hound::SampleFormat::Float,
            },
        };
        let writer =
            hound::WavWriter::new(BufWriter::new(file), spec).map_err(|source| Error::Wav {
                path: name.clone(),
                source,
            })?;
        Ok(Self {
            target,
            writer,
            format,
            name,
        })
    }
}

impl AudioSink for WavSink {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        let name = &self.name;
        let wav_err = |source| Error::Wav {
            path: name.clone(),
            source,
        };
        for &s in samples {
            match self.format {
                SampleFormat::I16 => self.writer.write_sample(to_i16(s)),
                SampleFormat::F32 => self.writer.write_sample(s),
            }
            .map_err(wav_err)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let Self {
            target,
            writer,
            name,
            ..
        } = *self;
        writer.finalize().map_err(|source| Error::Wav {
            path: name.clone(),
            source,
        })?;
        match target {
            WavTarget::File { path, temp } => temp.persist(&path).map_err(|e| Error::Write {
                path,
                source: e.error,
            }),
            WavTarget::Stdout { mut file } => {
                let err = |source| Error::Write {
                    path: name.clone(),
                    source,
                };
                file.seek(SeekFrom::Start(0)).map_err(err)?;
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut file, &mut out).map_err(err)?;
                out.flush().map_err(err)
            }
        }
    }
}

/// Headerless little-endian samples to a stream (Piper's `--output-raw`),
/// flushed after every sentence so a player can start at once.
pub struct RawSink<W: Write> {
    out: W,
    format: SampleFormat,
    name: PathBuf,
}

impl<W: Write> RawSink<W> {
    /// Writes to `out`; `name` (such as `<stdout>`) appears in errors.
    pub fn new(out: W, format: SampleFormat, name: impl Into<PathBuf>) -> Self {
        Self {
            out,
            format,
            name: name.into(),
        }
    }
}

impl<W: Write> AudioSink for RawSink<W> {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        let mut bytes = Vec::with_capacity(samples.len() * 4);
        for &s in samples {
            match self.format {
                SampleFormat::I16 => bytes.extend_from_slice(&to_i16(s).to_le_bytes()),
                SampleFormat::F32 => bytes.extend_from_slice(&s.to_le_bytes()),
            }
        }
        let name = &self.name;
        let err = |source| Error::Write {
            path: name.clone(),
            source,
        };
        self.out.write_all(&bytes).map_err(err)?;
        self.out.flush().map_err(err)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let name = self.name.clone();
        self.out
            .flush()
            .map_err(|source| Error::Write { path: name, source })
    }
}

/// Number of zero samples for `seconds` of silence, as Piper rounds it.
pub fn silence_samples(sample_rate: u32, seconds: f32) -> usize {
    (sample_rate as f32 * seconds.max(0.0)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy: `np.clip(np.float32([0.5, -1.0, 1.0, 0.123456, -0.99999]) * 32767.0,
    /// -32767, 32767).astype(np.int16)` → `[16383, -32767, 32767, 4045, -32766]`.
    #[test]
    fn int16_conversion_truncates_like_numpy() {
        let got: Vec<i16> = [0.5f32, -1.0, 1.0, 0.123456, -0.99999]
            .iter()
            .map(|&v| to_i16(v))
            .collect();
        assert_eq!(got, vec![16383, -32767, 32767, 4045, -32766]);
    }

    #[test]
    fn normalization_scales_peak_to_one_then_volume() {
        let mut a = vec![0.1f32, -0.4, 0.2];
        PostProcess {
            normalize: true,
            volume: 0.5,
        }
        .apply(&mut a);
        assert_eq!(a, vec![0.125, -0.5, 0.25]);
    }

    #[test]
    fn silent_audio_stays_silent_and_loud_audio_is_clipped() {
        let mut quiet = vec![1e-9f32, -1e-9];
        PostProcess::default().apply(&mut quiet);
        assert_eq!(quiet, vec![0.0, 0.0]);
        let mut loud = vec![0.5f32, -0.25];
        PostProcess {
            normalize: false,
            volume: 4.0,
        }
        .apply(&mut loud);
        assert_eq!(loud, vec![1.0, -1.0]);
    }

    #[test]
    fn wav_appears_only_when_finished() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Write {
            path: "tempdir".into(),
            source,
        })?;
        let path = dir.path().join("out.wav");
        let mut sink = Box::new(WavSink::create(&path, 22050, SampleFormat::I16)?);
        sink.write(&[0.0, 0.5, -0.5])?;
        assert!(!path.exists(), "no file before finish");
        sink.finish()?;
        let reader = hound::WavReader::open(&path).map_err(|source| Error::Wav {
            path: path.clone(),
            source,
        })?;
        assert_eq!(reader.spec().sample_rate, 22050);
        let samples: Vec<i16> = reader
            .into_samples()
            .collect::<std::result::Result<_, _>>()
            .map_err(|source| Error::Wav {
                path: path.clone(),
                source,
            })?;
        assert_eq!(samples, vec![0, 16383, -16383]);
        let leftovers = std::fs::read_dir(dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(
            leftovers, 1,
            "the temporary file was renamed, not left behind"
        );
        Ok(())
    }

    /// Regression: the WAV kept the temporary file's private mode (0600).
    #[cfg(unix)]
    #[test]
    fn finished_wav_has_ordinary_file_permissions() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| Error::Write {
            path: "tempdir".into(),
            source,
        };
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("out.wav");
        let sink = Box::new(WavSink::create(&path, 16000, SampleFormat::I16)?);
        sink.finish()?;
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).map_err(io)?;
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&path).map_err(io)?, mode(&plain).map_err(io)?);
        Ok(())
    }

    #[test]
    fn unwritable_directory_is_an_error_naming_the_path() {
        let err = WavSink::create(
            Path::new("/nonexistent-dir/x/out.wav"),
            22050,
            SampleFormat::I16,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("/nonexistent-dir/x/out.wav"), "{err}");
    }
}

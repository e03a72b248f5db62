//! Audio response formats of `POST /v1/audio/speech`.
//!
//! All are mono 16-bit at the voice's sample rate (Piper's sample
//! conversion). `wav` and `pcm` stream sentence by sentence: the WAV header
//! goes out before the length is known, so its two size fields hold
//! `0xFFFFFFFF`, the convention for streamed WAV that ffmpeg, sox and
//! browsers read to the end of the stream. `flac` (the pure-Rust `flacenc`
//! encoder) is encoded once the whole text is synthesized.

use bytes::{BufMut, Bytes, BytesMut};
use flacenc::component::BitRepr;
use flacenc::error::Verify;
use vivace_frontend::audio::to_i16;

/// What the client asked the audio to be encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// RIFF WAV, 16-bit PCM, streamed.
    Wav,
    /// Headerless 16-bit little-endian samples, streamed.
    Pcm,
    /// FLAC, 16-bit, sent whole.
    Flac,
}

/// The names `response_format` accepts, for error messages.
pub const SUPPORTED: &str = "wav, pcm, flac";

impl ResponseFormat {
    /// Parses OpenAI's `response_format`; formats Vivace does not encode
    /// (`mp3`, `opus`, `aac`) are an error naming the supported ones.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "wav" => Ok(Self::Wav),
            "pcm" => Ok(Self::Pcm),
            "flac" => Ok(Self::Flac),
            other => Err(format!(
                "response_format {other:?} is not supported: use one of {SUPPORTED}"
            )),
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Pcm => "audio/pcm",
            Self::Flac => "audio/flac",
        }
    }

    /// Whether audio is sent sentence by sentence.
    pub fn streams(self) -> bool {
        matches!(self, Self::Wav | Self::Pcm)
    }
}

/// Size fields of a WAV whose length is not known yet.
const UNKNOWN_SIZE: u32 = u32::MAX;

/// The 44-byte header of a streamed mono 16-bit WAV.
pub fn wav_stream_header(sample_rate: u32) -> Bytes {
    let mut h = BytesMut::with_capacity(44);
    h.put_slice(b"RIFF");
    h.put_u32_le(UNKNOWN_SIZE);
    h.put_slice(b"WAVEfmt ");
    h.put_u32_le(16); // fmt chunk size
    h.put_u16_le(1); // PCM
    h.put_u16_le(1); // mono
    h.put_u32_le(sample_rate);
    h.put_u32_le(sample_rate.saturating_mul(2)); // bytes per second
    h.put_u16_le(2); // block align
    h.put_u16_le(16); // bits per sample
    h.put_slice(b"data");
    h.put_u32_le(UNKNOWN_SIZE);
    h.freeze()
}

/// Samples in `[-1, 1]` as 16-bit little-endian PCM.
pub fn pcm_s16le(samples: &[f32]) -> Bytes {
    let mut out = BytesMut::with_capacity(samples.len() * 2);
    for &s in samples {
        out.put_i16_le(to_i16(s));
    }
    out.freeze()
}

/// Encodes samples in `[-1, 1]` as a 16-bit mono FLAC file.
pub fn flac(samples: &[f32], sample_rate: u32) -> Result<Vec<u8>, String> {
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .map_err(|(_, e)| format!("FLAC encoder configuration: {e:?}"))?;
    let ints: Vec<i32> = samples.iter().map(|&s| i32::from(to_i16(s))).collect();
    let source = flacenc::source::MemSource::from_samples(&ints, 1, 16, sample_rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .map_err(|e| format!("FLAC encoding failed: {e:?}"))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| format!("FLAC encoding failed: {e:?}"))?;
    Ok(sink.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_wav_header_describes_mono_16_bit() {
        let h = wav_stream_header(22050);
        assert_eq!(h.len(), 44);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 22050);
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 44100);
        assert_eq!(&h[36..40], b"data");
        assert_eq!(&h[40..44], &[0xFF; 4]);
    }

    #[test]
    fn formats_openai_names_and_refuses_others() {
        assert_eq!(ResponseFormat::parse("wav"), Ok(ResponseFormat::Wav));
        assert_eq!(ResponseFormat::parse("pcm"), Ok(ResponseFormat::Pcm));
        assert_eq!(ResponseFormat::parse("flac"), Ok(ResponseFormat::Flac));
        let err = ResponseFormat::parse("mp3").unwrap_err();
        assert!(err.contains("mp3") && err.contains(SUPPORTED), "{err}");
    }

    #[test]
    fn pcm_uses_pipers_truncating_conversion() {
        let bytes = pcm_s16le(&[0.0, 1.0, -1.0, 0.5]);
        let values: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(values, vec![0, 32767, -32767, 16383]);
    }

    #[test]
    fn flac_decodes_to_the_same_16_bit_samples() {
        let samples: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin() * 0.8).collect();
        let encoded = flac(&samples, 16_000).unwrap();
        let mut reader = claxon::FlacReader::new(std::io::Cursor::new(encoded)).unwrap();
        assert_eq!(reader.streaminfo().sample_rate, 16_000);
        assert_eq!(reader.streaminfo().channels, 1);
        let decoded: Vec<i32> = reader.samples().map(Result::unwrap).collect();
        let expected: Vec<i32> = samples.iter().map(|&s| i32::from(to_i16(s))).collect();
        assert_eq!(decoded, expected);
    }
}

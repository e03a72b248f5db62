//! Audio response formats of `POST /v1/audio/speech`.
//!
//! All are mono. `wav`, `pcm` and `flac` are 16-bit (Piper's sample
//! conversion): `pcm` at 24 kHz as OpenAI's, `wav` and `flac` at the voice's
//! rate, each resampled to the request's `sample_rate` when it gives one.
//! Every format but `flac` streams sentence by sentence through a
//! [`StreamEncoder`]:
//! - `wav`: the header goes out before the length is known, so its two
//!   size fields hold `0xFFFFFFFF`, the convention for streamed WAV that
//!   ffmpeg, sox and browsers read to the end of the stream;
//! - `mp3` (OpenAI's default): LAME 3.100, 64 kbit/s CBR at the voice's rate
//!   (MPEG-2 layer III at 16, 22.05 and 24 kHz);
//! - `opus`: Ogg Opus at 32 kbit/s (the pure-Rust `opus-pure` encoder,
//!   20 ms frames), the voice resampled to 24 kHz unless it is at a rate
//!   Opus takes; pages of about 1 KB, the end trimmed to the audio's length.
//!
//! `flac` (the pure-Rust `flacenc` encoder) is encoded once the whole text
//! is synthesized.

use bytes::{BufMut, Bytes, BytesMut};
use flacenc::component::BitRepr;
use flacenc::error::Verify;
use vivace_frontend::audio::to_i16;
use vivace_frontend::resample::resample;

/// What the client asked the audio to be encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// RIFF WAV, 16-bit PCM, streamed.
    Wav,
    /// Headerless 16-bit little-endian samples, streamed.
    Pcm,
    /// FLAC, 16-bit, sent whole.
    Flac,
    /// MP3 (LAME, 64 kbit/s CBR), streamed: OpenAI's default.
    Mp3,
    /// Ogg Opus (32 kbit/s), streamed.
    Opus,
}

/// The names `response_format` accepts, for error messages.
pub const SUPPORTED: &str = "mp3, opus, wav, pcm, flac";

impl ResponseFormat {
    /// What a request without `response_format` gets: OpenAI's default.
    pub const DEFAULT: Self = Self::Mp3;

    /// Parses OpenAI's `response_format`; one Vivace does not encode
    /// (`aac`) is an error naming the supported ones.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "wav" => Ok(Self::Wav),
            "pcm" => Ok(Self::Pcm),
            "flac" => Ok(Self::Flac),
            "mp3" => Ok(Self::Mp3),
            "opus" => Ok(Self::Opus),
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
            Self::Mp3 => "audio/mpeg",
            Self::Opus => "audio/ogg",
        }
    }

    /// Whether audio is sent sentence by sentence.
    pub fn streams(self) -> bool {
        !matches!(self, Self::Flac)
    }

    /// The sample rate of the encoded audio for a voice at `voice_rate`,
    /// `requested` being the request's `sample_rate` (checked by
    /// [`ResponseFormat::check_rate`]).
    pub fn output_rate(self, voice_rate: u32, requested: Option<u32>) -> u32 {
        match self {
            Self::Pcm => requested.unwrap_or(PCM_RATE),
            Self::Wav | Self::Flac => requested.unwrap_or(voice_rate),
            Self::Mp3 => voice_rate,
            Self::Opus => opus_rate(voice_rate),
        }
    }

    /// Whether this format takes the request's `sample_rate`, and the rate
    /// is one it can be: a message naming the fix otherwise.
    pub fn check_rate(self, requested: u32) -> Result<(), String> {
        if !matches!(self, Self::Pcm | Self::Wav | Self::Flac) {
            return Err(format!(
                "`sample_rate` applies to pcm, wav and flac; {} has its own rate: leave it out",
                self.name()
            ));
        }
        match SAMPLE_RATES.contains(&requested) {
            true => Ok(()),
            false => Err(format!(
                "`sample_rate` must be between {} and {} Hz, got {requested}",
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            )),
        }
    }

    /// The name requests use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Pcm => "pcm",
            Self::Flac => "flac",
            Self::Mp3 => "mp3",
            Self::Opus => "opus",
        }
    }
}

/// OpenAI's `pcm`: 24 kHz, whatever the voice.
pub const PCM_RATE: u32 = 24_000;
/// The rates a request's `sample_rate` may ask for.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// `samples` at `from` Hz as `to` Hz (each sentence on its own: the
/// resampler's edges fall in the pauses between sentences).
pub fn at_rate(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    resample(samples, from, to).map_err(|e| e.to_string())
}

/// MP3 bit rate: 64 kbit/s mono keeps speech at 16–24 kHz clear.
const MP3_KBPS: mp3lame_encoder::Bitrate = mp3lame_encoder::Bitrate::Kbps64;
/// Opus bit rate, in bit/s: transparent for mono speech.
const OPUS_BPS: i32 = 32_000;
/// Ogg page payload the Opus stream accumulates before a page goes out
/// (about a quarter of a second at 32 kbit/s).
const OPUS_PAGE_BYTES: usize = 1024;

/// The rate Opus encodes a voice at: its own when Opus takes it, else 24 kHz
/// (the voices' rates are 16 to 24 kHz; 48 kHz above that).
fn opus_rate(voice_rate: u32) -> u32 {
    match voice_rate {
        8_000 | 12_000 | 16_000 | 24_000 | 48_000 => voice_rate,
        r if r <= 24_000 => 24_000,
        _ => 48_000,
    }
}

/// Encodes one streamed response: bytes for each sentence as it comes
/// (the header with the first), then the end of the stream.
pub enum StreamEncoder {
    /// Raw 16-bit samples.
    Pcm {
        /// The voice's rate.
        voice_rate: u32,
        /// The response's.
        rate: u32,
    },
    /// WAV: the streamed header once, then raw samples.
    Wav {
        /// The voice's rate.
        voice_rate: u32,
        /// The response's, in the header.
        rate: u32,
        /// Whether the header went out.
        started: bool,
    },
    /// MP3 frames from LAME.
    Mp3(Box<mp3lame_encoder::Encoder>),
    /// Ogg Opus pages.
    Opus(Box<OpusStream>),
}

impl StreamEncoder {
    /// The encoder for `format` of a voice at `sample_rate`, the response
    /// at `rate` (from [`ResponseFormat::output_rate`]); `flac` is not
    /// streamed and has none.
    pub fn new(format: ResponseFormat, sample_rate: u32, rate: u32) -> Result<Self, String> {
        match format {
            ResponseFormat::Pcm => Ok(Self::Pcm {
                voice_rate: sample_rate,
                rate,
            }),
            ResponseFormat::Wav => Ok(Self::Wav {
                voice_rate: sample_rate,
                rate,
                started: false,
            }),
            ResponseFormat::Mp3 => {
                let lame = |e: mp3lame_encoder::BuildError| format!("the MP3 encoder: {e:?}");
                let mut builder = mp3lame_encoder::Builder::new()
                    .ok_or_else(|| "the MP3 encoder could not be allocated".to_string())?;
                builder.set_num_channels(1).map_err(lame)?;
                builder.set_sample_rate(sample_rate).map_err(lame)?;
                builder.set_brate(MP3_KBPS).map_err(lame)?;
                builder
                    .set_mode(mp3lame_encoder::Mode::Mono)
                    .map_err(lame)?;
                builder
                    .set_quality(mp3lame_encoder::Quality::Good)
                    .map_err(lame)?;
                // The Info tag is rewritten at the start of a finished file,
                // which a stream cannot do: none.
                builder.set_to_write_vbr_tag(false).map_err(lame)?;
                Ok(Self::Mp3(Box::new(builder.build().map_err(lame)?)))
            }
            ResponseFormat::Opus => Ok(Self::Opus(Box::new(OpusStream::new(sample_rate)?))),
            ResponseFormat::Flac => Err("FLAC is not streamed".into()),
        }
    }

    /// The bytes for the next `samples` (in `[-1, 1]`, at the voice's rate).
    pub fn push(&mut self, samples: &[f32]) -> Result<Bytes, String> {
        match self {
            Self::Pcm { voice_rate, rate } => Ok(pcm_s16le(&at_rate(samples, *voice_rate, *rate)?)),
            Self::Wav {
                voice_rate,
                rate,
                started,
            } => {
                let mut out = BytesMut::new();
                if !*started {
                    out.put_slice(&wav_stream_header(*rate));
                    *started = true;
                }
                out.put_slice(&pcm_s16le(&at_rate(samples, *voice_rate, *rate)?));
                Ok(out.freeze())
            }
            Self::Mp3(lame) => {
                let clipped: Vec<f32> = samples.iter().map(|s| s.clamp(-1.0, 1.0)).collect();
                let mut out =
                    Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(clipped.len()));
                lame.encode_to_vec(mp3lame_encoder::MonoPcm(&clipped), &mut out)
                    .map_err(|e| format!("MP3 encoding failed: {e:?}"))?;
                Ok(Bytes::from(out))
            }
            Self::Opus(opus) => opus.push(samples),
        }
    }

    /// The bytes that end the stream (LAME's last frames, Opus's last page).
    pub fn finish(self) -> Result<Bytes, String> {
        match self {
            Self::Pcm { .. } | Self::Wav { .. } => Ok(Bytes::new()),
            Self::Mp3(mut lame) => {
                let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(0));
                lame.flush_to_vec::<mp3lame_encoder::FlushGap>(&mut out)
                    .map_err(|e| format!("MP3 encoding failed: {e:?}"))?;
                Ok(Bytes::from(out))
            }
            Self::Opus(opus) => opus.finish(),
        }
    }
}

/// An Ogg Opus stream being written: 20 ms frames at [`opus_rate`], the
/// samples of a frame not yet full kept for the next push.
pub struct OpusStream {
    encoder: opus_pure::OpusEncoder,
    writer: opus_pure::OggOpusWriter<Vec<u8>>,
    voice_rate: u32,
    rate: u32,
    pending: Vec<f32>,
    /// Samples at `rate` written so far, for the final granule.
    written: u64,
    pre_skip: u64,
    packet: Vec<u8>,
}

impl OpusStream {
    fn new(voice_rate: u32) -> Result<Self, String> {
        let opus = |e: opus_pure::Error| format!("the Opus encoder: {e}");
        let rate = opus_rate(voice_rate);
        let mut encoder = opus_pure::OpusEncoder::new(rate as i32, 1, opus_pure::Application::Voip)
            .map_err(opus)?;
        encoder.bitrate_bps = OPUS_BPS;
        let head = opus_pure::OpusHead::for_encoder(&encoder, voice_rate);
        let pre_skip = u64::from(head.pre_skip);
        let mut writer = opus_pure::OggOpusWriter::new(Vec::new(), head).map_err(opus)?;
        writer.set_page_target(OPUS_PAGE_BYTES);
        Ok(Self {
            encoder,
            writer,
            voice_rate,
            rate,
            pending: Vec::new(),
            written: 0,
            pre_skip,
            packet: vec![0u8; opus_pure::MAX_PACKET_BYTES],
        })
    }

    fn frame(&self) -> usize {
        self.rate as usize / 50
    }

    fn push(&mut self, samples: &[f32]) -> Result<Bytes, String> {
        let at_rate = match self.rate == self.voice_rate {
            true => samples.to_vec(),
            false => resample(samples, self.voice_rate, self.rate).map_err(|e| e.to_string())?,
        };
        self.written += at_rate.len() as u64;
        self.pending.extend(at_rate);
        let frame = self.frame();
        let whole = self.pending.len() - self.pending.len() % frame;
        let frames: Vec<f32> = self.pending.drain(..whole).collect();
        for block in frames.chunks_exact(frame) {
            self.encode(block, None)?;
        }
        Ok(self.take())
    }

    /// Encodes one frame; `duration_48k` overrides its length (the end trim).
    fn encode(&mut self, block: &[f32], duration_48k: Option<u32>) -> Result<(), String> {
        let opus = |e: opus_pure::Error| format!("Opus encoding failed: {e}");
        let n = self
            .encoder
            .encode(block, block.len(), &mut self.packet)
            .map_err(opus)?;
        let packet = &self.packet[..n];
        match duration_48k {
            Some(d) => self.writer.write_packet_with_duration(packet, d),
            None => self.writer.write_packet(packet),
        }
        .map_err(opus)
    }

    /// The bytes written so far and not yet sent.
    fn take(&mut self) -> Bytes {
        self.writer
            .get_mut()
            .map(|sink| Bytes::from(std::mem::take(sink)))
            .unwrap_or_default()
    }

    fn finish(mut self) -> Result<Bytes, String> {
        let frame = self.frame();
        let to_48k = u64::from(48_000 / self.rate);
        // The encoder's look-ahead and the last partial frame: silence to
        // flush them, then a granule that ends at the audio's last sample.
        let end = self.pre_skip + self.written * to_48k;
        let mut tail = std::mem::take(&mut self.pending);
        tail.resize(tail.len().div_ceil(frame).max(1) * frame, 0.0);
        let lookahead = self.encoder.lookahead().div_ceil(frame).max(1) * frame;
        tail.resize(tail.len() + lookahead, 0.0);
        let natural = frame as u64 * to_48k;
        for block in tail.chunks_exact(frame) {
            let so_far = u64::try_from(self.writer.granule()).unwrap_or(0);
            if so_far >= end {
                break;
            }
            // The last packets state less than they carry (RFC 7845 §4.4).
            let duration = natural.min(end - so_far) as u32;
            self.encode(block, Some(duration))?;
        }
        let opus = |e: opus_pure::Error| format!("Opus encoding failed: {e}");
        let sink = self.writer.finish().map_err(opus)?;
        Ok(Bytes::from(sink))
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
        assert_eq!(ResponseFormat::parse("mp3"), Ok(ResponseFormat::Mp3));
        assert_eq!(ResponseFormat::parse("opus"), Ok(ResponseFormat::Opus));
        let err = ResponseFormat::parse("aac").unwrap_err();
        assert!(err.contains("aac") && err.contains(SUPPORTED), "{err}");
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

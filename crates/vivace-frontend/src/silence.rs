//! Long silences trimmed from a reference recording, as resemblyzer's
//! `trim_long_silences` does, so pauses do not dilute the speaker embedding.
//!
//! A WebRTC voice-activity detector (mode 3, "very aggressive") judges every
//! 30 ms window; the flags are smoothed by a moving average over 8 windows,
//! and each kept window keeps its neighbours within 3 windows, so silences up
//! to 6 windows (180 ms) stay. The detector is libfvad, the C code
//! py-webrtcvad also wraps, built by the `webrtc-vad` crate: its decisions are
//! identical to resemblyzer's. (`earshot`, a pure-Rust port, was tried and
//! judged a window differently on one of the committed test recordings.)

use webrtc_vad::{SampleRate, Vad, VadMode};

/// Samples per detector window: 30 ms at 16 kHz (`vad_window_length`).
const VAD_WINDOW: usize = 480;
/// Windows in the moving average (`vad_moving_average_width`).
const AVERAGE_WIDTH: usize = 8;
/// Longest silence kept, in windows (`vad_max_silence_length`).
const MAX_SILENCE_WINDOWS: usize = 6;

/// The detector's verdict on each whole 30 ms window of `samples` (16 kHz,
/// full scale ±1). Samples become 16-bit as resemblyzer converts them:
/// `round(x · 32767)`, half to even, wrapping past full scale like numpy's
/// `astype(int16)`.
fn voice_flags(samples: &[f32]) -> Vec<bool> {
    let mut vad = Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, VadMode::VeryAggressive);
    let mut pcm = [0i16; VAD_WINDOW];
    samples
        .chunks_exact(VAD_WINDOW)
        .map(|window| {
            for (p, &s) in pcm.iter_mut().zip(window) {
                *p = (s * 32767.0).round_ties_even() as i32 as i16;
            }
            // A 480-sample frame at 16 kHz is always a valid frame size.
            vad.is_voice_segment(&pcm).unwrap_or(true)
        })
        .collect()
}

/// Which windows survive: a moving average of the flags over
/// [`AVERAGE_WIDTH`] windows, rounded as numpy rounds (half to even, so 4 of
/// 8 is silence), then dilated by [`MAX_SILENCE_WINDOWS`]` / 2` on each side.
fn keep_mask(flags: &[bool]) -> Vec<bool> {
    let n = flags.len();
    // numpy pads (width − 1) / 2 zeros before and width / 2 after, so window
    // i averages flags[i − 3 ..= i + 4].
    let before = (AVERAGE_WIDTH - 1) / 2;
    let after = AVERAGE_WIDTH / 2;
    let voiced: Vec<bool> = (0..n)
        .map(|i| {
            let lo = i.saturating_sub(before);
            let hi = (i + after + 1).min(n);
            let count = flags[lo..hi].iter().filter(|&&f| f).count();
            // round(count / 8) is 1 exactly when count > 4.
            2 * count > AVERAGE_WIDTH
        })
        .collect();
    let reach = MAX_SILENCE_WINDOWS.div_ceil(2);
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(reach);
            let hi = (i + reach + 1).min(n);
            voiced[lo..hi].iter().any(|&v| v)
        })
        .collect()
}

/// resemblyzer's `trim_long_silences`: drops the tail that does not fill a
/// whole window, then every window [`keep_mask`] rejects.
pub fn trim_long_silences(samples: &[f32]) -> Vec<f32> {
    let whole = samples.len() - samples.len() % VAD_WINDOW;
    let samples = &samples[..whole];
    let mask = keep_mask(&voice_flags(samples));
    samples
        .chunks_exact(VAD_WINDOW)
        .zip(mask)
        .filter(|(_, keep)| *keep)
        .flat_map(|(window, _)| window.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &str) -> Vec<bool> {
        s.bytes().map(|b| b == b'1').collect()
    }

    fn mask_string(mask: &[bool]) -> String {
        mask.iter().map(|&m| if m { '1' } else { '0' }).collect()
    }

    /// Expected masks computed by resemblyzer's numpy/scipy code
    /// (`moving_average`, `np.round`, `binary_dilation(ones(7))`).
    #[test]
    fn mask_matches_resemblyzers_smoothing_and_dilation() {
        let cases = [
            // Four voiced windows of eight average to 0.5, which rounds to 0.
            ("0000111100000000000", "0000000000000000000"),
            ("0000111110000000000", "0111111111100000000"),
            (
                "1111100000000000000001111111",
                "1111111000000000001111111111",
            ),
            // A gap of six windows is all but bridged; a long one is not.
            ("11111111110000001111111111", "11111111111101111111111111"),
            (
                "1111111111000000000000000001111111111",
                "1111111111110000000000001111111111111",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_string(&keep_mask(&flags(input))), expected, "{input}");
        }
    }

    #[test]
    fn silence_is_trimmed_away_and_the_ragged_tail_dropped() {
        assert!(trim_long_silences(&vec![0.0; VAD_WINDOW * 20 + 7]).is_empty());
        assert!(voice_flags(&vec![0.0; VAD_WINDOW * 3]).iter().all(|&f| !f));
        // The 7 samples past the last whole window get no verdict.
        assert_eq!(voice_flags(&vec![0.0; VAD_WINDOW * 3 + 7]).len(), 3);
    }
}

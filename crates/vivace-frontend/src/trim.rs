//! Leading and trailing silence trimmed as `librosa.effects.trim` does it
//! (what Chatterbox's voice encoder runs with `top_db = 20`): the RMS of
//! 2048-sample frames every 512 samples (centred, zero-padded), in dB
//! relative to the loudest frame; the kept span runs from the first frame
//! above `-top_db` to the end of the last one.

/// Frame length of the RMS (librosa's default).
const FRAME: usize = 2048;
/// Hop between frames (librosa's default).
const HOP: usize = 512;
/// The smallest amplitude the dB scale distinguishes (`amplitude_to_db`'s `amin`).
const AMIN: f64 = 1e-5;

/// The part of `samples` between the first and last frame louder than
/// `top_db` below the loudest one. All-zero input is kept whole, as
/// librosa keeps it (every frame is as loud as the loudest).
pub fn trim_top_db(samples: &[f32], top_db: f64) -> &[f32] {
    if samples.is_empty() {
        return samples;
    }
    let frames = 1 + samples.len() / HOP;
    let pad = FRAME / 2;
    let rms: Vec<f64> = (0..frames)
        .map(|t| {
            // Frame t covers padded samples t·HOP .. t·HOP + FRAME.
            let lo = (t * HOP).saturating_sub(pad);
            let hi = (t * HOP + FRAME).saturating_sub(pad).min(samples.len());
            let energy: f64 = samples[lo.min(hi)..hi]
                .iter()
                .map(|&s| f64::from(s) * f64::from(s))
                .sum();
            (energy / FRAME as f64).sqrt()
        })
        .collect();
    let loudest = rms.iter().copied().fold(0.0, f64::max);
    let db = |a: f64| 10.0 * (a * a).max(AMIN * AMIN).log10();
    let reference = db(loudest);
    let loud: Vec<usize> = (0..frames)
        .filter(|&t| db(rms[t]) - reference > -top_db)
        .collect();
    match (loud.first(), loud.last()) {
        (Some(&first), Some(&last)) => {
            let start = (first * HOP).min(samples.len());
            let end = ((last + 1) * HOP).min(samples.len());
            &samples[start..end.max(start)]
        }
        _ => &samples[..0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_edges_go_and_the_loud_middle_stays() {
        // 0.5 s of silence, 1 s of a tone, 0.5 s at 1% of its level (-40 dB).
        let mut x = vec![0f32; 8000];
        x.extend((0..16000).map(|i| (i as f32 * 0.05).sin() * 0.5));
        x.extend((0..8000).map(|i| (i as f32 * 0.05).sin() * 0.005));
        let kept = trim_top_db(&x, 20.0);
        let start = kept.as_ptr() as usize - x.as_ptr() as usize;
        let start = start / std::mem::size_of::<f32>();
        // Frame boundaries are 512 samples apart and frames are 2048 long:
        // the kept span starts within a frame of the tone and ends within one.
        assert!((8000 - 2048..=8000).contains(&start), "{start}");
        let end = start + kept.len();
        assert!((24000..=24000 + 2048).contains(&end), "{end}");
        assert_eq!(trim_top_db(&[0.0; 5000], 20.0).len(), 5000);
        assert!(trim_top_db(&[], 20.0).is_empty());
    }
}

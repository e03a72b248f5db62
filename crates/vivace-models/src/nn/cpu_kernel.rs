//! Which CPU kernel path runs: the widest this CPU has, detected once, or
//! a narrower one forced with `VIVACE_CPU_KERNEL`, so that every path can
//! be tested and timed on one machine. Every Vivace kernel that needs a
//! CPU feature asks here, never the CPU directly, so a forced path is the
//! path Vivace's own kernels run; libraries with their own dispatch (the
//! `gemm` crate behind candle's matmul and the portable GEMM) still pick
//! their own.
//!
//! | path | what runs |
//! |---|---|
//! | `avx512-vnni` | AVX-512 f32 kernels; int8 sums four bytes a lane (`vpdpbusd`) |
//! | `avx512` | AVX-512 f32 kernels; int8 two channels a lane on AVX2 (`vpmaddwd`) |
//! | `avx2` | loops compiled for AVX2 and FMA, the `gemm` crate's GEMM; int8 on `vpmaddwd` |
//! | `portable` | the build's baseline (SSE2 on x86-64; any other target) |

use std::sync::OnceLock;

/// The environment variable that forces a kernel path.
pub const ENV: &str = "VIVACE_CPU_KERNEL";

/// A CPU kernel path, from the narrowest to the widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelPath {
    /// Plain loops at the build's baseline.
    Portable,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 (F, BW) without VNNI's byte products.
    Avx512,
    /// AVX-512 with VNNI.
    Avx512Vnni,
}

impl KernelPath {
    /// Every path, narrowest first.
    pub const ALL: [KernelPath; 4] = [
        KernelPath::Portable,
        KernelPath::Avx2,
        KernelPath::Avx512,
        KernelPath::Avx512Vnni,
    ];

    /// Its name, as `VIVACE_CPU_KERNEL` takes it.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
            KernelPath::Avx512Vnni => "avx512-vnni",
        }
    }

    /// The path called `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The widest path this CPU runs.
pub fn detected() -> KernelPath {
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: &str| match f {
            "avx512f" => is_x86_feature_detected!("avx512f"),
            "avx512bw" => is_x86_feature_detected!("avx512bw"),
            "avx512vnni" => is_x86_feature_detected!("avx512vnni"),
            "avx2" => is_x86_feature_detected!("avx2"),
            "fma" => is_x86_feature_detected!("fma"),
            _ => false,
        };
        let avx2 = has("avx2") && has("fma");
        if avx2 && has("avx512f") && has("avx512bw") {
            return if has("avx512vnni") {
                KernelPath::Avx512Vnni
            } else {
                KernelPath::Avx512
            };
        }
        if avx2 {
            return KernelPath::Avx2;
        }
    }
    KernelPath::Portable
}

/// Why a `VIVACE_CPU_KERNEL` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelChoiceError {
    /// Not a path's name.
    #[error("{ENV}={0:?} is not a kernel path: use portable, avx2, avx512 or avx512-vnni")]
    Unknown(String),
    /// A path this CPU does not have.
    #[error("{ENV}={asked} needs CPU features this CPU lacks: it runs at most {widest}")]
    Unsupported {
        /// The path asked for.
        asked: KernelPath,
        /// The widest this CPU runs.
        widest: KernelPath,
    },
}

/// The path `value` (a `VIVACE_CPU_KERNEL` setting) asks for on a CPU
/// whose widest path is `widest`; none set: `widest`.
pub fn choose(value: Option<&str>, widest: KernelPath) -> Result<KernelPath, KernelChoiceError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(widest);
    };
    let asked = KernelPath::parse(value).ok_or_else(|| KernelChoiceError::Unknown(value.into()))?;
    if asked > widest {
        return Err(KernelChoiceError::Unsupported { asked, widest });
    }
    Ok(asked)
}

/// The path `VIVACE_CPU_KERNEL` asks for here (see [`choose`]).
pub fn from_env() -> Result<KernelPath, KernelChoiceError> {
    choose(std::env::var(ENV).ok().as_deref(), detected())
}

/// The path the kernels run, fixed on first use: the forced one, or the
/// widest. A setting that cannot be used falls back to the widest path
/// with a warning (binaries check [`from_env`] first and refuse it).
pub fn active() -> KernelPath {
    static ACTIVE: OnceLock<KernelPath> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        from_env().unwrap_or_else(|e| {
            tracing::warn!("{e}; running {}", detected());
            detected()
        })
    })
}

/// Whether the AVX-512 f32 kernels run.
pub fn avx512() -> bool {
    active() >= KernelPath::Avx512
}

/// Whether loops compiled for AVX2 and FMA (and the int8 `vpmaddwd`
/// kernels) run.
pub fn avx2() -> bool {
    active() >= KernelPath::Avx2
}

/// Whether the int8 `vpdpbusd` kernels run.
pub fn vnni() -> bool {
    active() >= KernelPath::Avx512Vnni
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_path_is_at_most_the_cpus() {
        use KernelPath::*;
        assert_eq!(choose(None, Avx2), Ok(Avx2));
        assert_eq!(choose(Some(" "), Avx512Vnni), Ok(Avx512Vnni));
        assert_eq!(choose(Some("AVX2"), Avx512Vnni), Ok(Avx2));
        assert_eq!(choose(Some("portable"), Avx2), Ok(Portable));
        assert_eq!(
            choose(Some("avx512"), Avx2),
            Err(KernelChoiceError::Unsupported {
                asked: Avx512,
                widest: Avx2
            })
        );
        let err = choose(Some("sse9"), Avx2).unwrap_err().to_string();
        assert!(
            err.contains("VIVACE_CPU_KERNEL") && err.contains("avx512-vnni"),
            "{err}"
        );
        for path in KernelPath::ALL {
            assert_eq!(KernelPath::parse(path.name()), Some(path));
        }
        // What the CPU has is always a choice.
        assert_eq!(choose(Some(detected().name()), detected()), Ok(detected()));
    }
}

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
//! | `avx512-vnni` | AVX-512 f32 kernels; int8 sums four bytes a lane (`vpdpbusd`, 512-bit) |
//! | `avx512` | AVX-512 f32 kernels; int8 two channels a lane on AVX2 (`vpmaddwd`) |
//! | `avx2-vnni` | loops compiled for AVX2 and FMA; int8 four bytes a lane with AVX-VNNI's 256-bit `vpdpbusd` (Intel client CPUs since Alder Lake) |
//! | `avx2` | loops compiled for AVX2 and FMA, the packed GEMM's 6 × 16 AVX2 kernel; int8 on `vpmaddwd` |
//! | `portable` | the build's baseline (SSE2 on x86-64; any other target), the `gemm` crate's GEMM |

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
    /// AVX2 with FMA, and AVX-VNNI's 256-bit byte products.
    Avx2Vnni,
    /// AVX-512 (F, BW) without VNNI's byte products.
    Avx512,
    /// AVX-512 with VNNI.
    Avx512Vnni,
}

impl KernelPath {
    /// Every path, narrowest first.
    pub const ALL: [KernelPath; 5] = [
        KernelPath::Portable,
        KernelPath::Avx2,
        KernelPath::Avx2Vnni,
        KernelPath::Avx512,
        KernelPath::Avx512Vnni,
    ];

    /// Its name, as `VIVACE_CPU_KERNEL` takes it.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx2Vnni => "avx2-vnni",
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

/// The CPU features the paths need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// AVX2 and FMA.
    pub avx2_fma: bool,
    /// AVX-VNNI (256-bit `vpdpbusd` without AVX-512).
    pub avx_vnni: bool,
    /// AVX-512 F and BW.
    pub avx512: bool,
    /// AVX-512 VNNI.
    pub avx512_vnni: bool,
}

impl Features {
    /// This CPU's.
    pub fn of_this_cpu() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            Self {
                avx2_fma: is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                avx_vnni: is_x86_feature_detected!("avxvnni"),
                avx512: is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw"),
                avx512_vnni: is_x86_feature_detected!("avx512vnni"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self::default()
        }
    }

    /// Whether a CPU with these features runs `path`.
    pub fn runs(self, path: KernelPath) -> bool {
        match path {
            KernelPath::Portable => true,
            KernelPath::Avx2 => self.avx2_fma,
            KernelPath::Avx2Vnni => self.avx2_fma && self.avx_vnni,
            KernelPath::Avx512 => self.avx2_fma && self.avx512,
            KernelPath::Avx512Vnni => self.avx2_fma && self.avx512 && self.avx512_vnni,
        }
    }

    /// The widest path they run.
    pub fn widest(self) -> KernelPath {
        KernelPath::ALL
            .into_iter()
            .rev()
            .find(|&p| self.runs(p))
            .unwrap_or(KernelPath::Portable)
    }
}

impl std::fmt::Display for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The widest path this CPU runs.
pub fn detected() -> KernelPath {
    Features::of_this_cpu().widest()
}

/// Why a `VIVACE_CPU_KERNEL` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelChoiceError {
    /// Not a path's name.
    #[error(
        "{ENV}={0:?} is not a kernel path: use portable, avx2, avx2-vnni, avx512 or avx512-vnni"
    )]
    Unknown(String),
    /// A path this CPU does not have.
    #[error("{ENV}={asked} needs CPU features this CPU lacks: its widest path is {widest}")]
    Unsupported {
        /// The path asked for.
        asked: KernelPath,
        /// The widest this CPU runs.
        widest: KernelPath,
    },
}

/// The path `value` (a `VIVACE_CPU_KERNEL` setting) asks for on a CPU
/// with `features`; none set: the widest they run.
pub fn choose(value: Option<&str>, features: Features) -> Result<KernelPath, KernelChoiceError> {
    let widest = features.widest();
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(widest);
    };
    let asked = KernelPath::parse(value).ok_or_else(|| KernelChoiceError::Unknown(value.into()))?;
    if !features.runs(asked) {
        return Err(KernelChoiceError::Unsupported { asked, widest });
    }
    Ok(asked)
}

/// The path `VIVACE_CPU_KERNEL` asks for here (see [`choose`]).
pub fn from_env() -> Result<KernelPath, KernelChoiceError> {
    choose(std::env::var(ENV).ok().as_deref(), Features::of_this_cpu())
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
    matches!(active(), KernelPath::Avx512 | KernelPath::Avx512Vnni)
}

/// Whether loops compiled for AVX2 and FMA (and the int8 `vpmaddwd`
/// kernels) run: every path but the portable one.
pub fn avx2() -> bool {
    active() >= KernelPath::Avx2
}

/// Whether the 512-bit int8 `vpdpbusd` kernels run.
pub fn avx512_vnni() -> bool {
    active() == KernelPath::Avx512Vnni
}

/// Whether the 256-bit (AVX-VNNI) int8 `vpdpbusd` kernels run.
pub fn avx_vnni() -> bool {
    active() == KernelPath::Avx2Vnni
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_path_is_one_the_cpu_runs() {
        use KernelPath::*;
        let all = |avx_vnni| Features {
            avx2_fma: true,
            avx_vnni,
            avx512: true,
            avx512_vnni: true,
        };
        let zen3 = Features {
            avx2_fma: true,
            ..Features::default()
        };
        let alder_lake = Features {
            avx_vnni: true,
            ..zen3
        };
        // Ice Lake server: AVX-512 VNNI without AVX-VNNI.
        let ice_lake = all(false);
        assert_eq!(zen3.widest(), Avx2);
        assert_eq!(alder_lake.widest(), Avx2Vnni);
        assert_eq!(ice_lake.widest(), Avx512Vnni);
        assert_eq!(Features::default().widest(), Portable);
        assert_eq!(choose(None, zen3), Ok(Avx2));
        assert_eq!(choose(Some(" "), all(true)), Ok(Avx512Vnni));
        assert_eq!(choose(Some("AVX2"), all(true)), Ok(Avx2));
        assert_eq!(choose(Some("avx2-vnni"), all(true)), Ok(Avx2Vnni));
        assert_eq!(choose(Some("portable"), zen3), Ok(Portable));
        assert_eq!(
            choose(Some("avx512"), alder_lake),
            Err(KernelChoiceError::Unsupported {
                asked: Avx512,
                widest: Avx2Vnni
            })
        );
        assert_eq!(
            choose(Some("avx2-vnni"), ice_lake),
            Err(KernelChoiceError::Unsupported {
                asked: Avx2Vnni,
                widest: Avx512Vnni
            })
        );
        let err = choose(Some("sse9"), zen3).unwrap_err().to_string();
        assert!(
            err.contains("VIVACE_CPU_KERNEL") && err.contains("avx2-vnni"),
            "{err}"
        );
        for path in KernelPath::ALL {
            assert_eq!(KernelPath::parse(path.name()), Some(path));
        }
        // What the CPU has is always a choice.
        let here = Features::of_this_cpu();
        assert_eq!(choose(Some(detected().name()), here), Ok(detected()));
    }
}

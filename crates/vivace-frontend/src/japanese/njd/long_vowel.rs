//! `njd_set_long_vowel`: OpenJTalk's long-vowel estimator (エイ → エー …)
//! is compiled out in pyopenjtalk-plus's fork (`#if 1 return;`, "long vowel
//! estimator is deprecated"): the dictionary's pronunciations already carry
//! their long vowels. Kept as a pass so that the pipeline reads as the C.

use super::Njd;

/// `njd_set_long_vowel`: nothing, as in pyopenjtalk-plus 0.4.1.post9.
pub fn apply(_njd: &mut Njd) {}

//! `njd_set_long_vowel`.

use super::Njd;

/// `njd_set_long_vowel`.
pub fn apply(_njd: &mut Njd) {}

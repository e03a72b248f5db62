//! `njd_set_unvoiced_vowel`.

use super::Njd;

/// `njd_set_unvoiced_vowel`.
pub fn apply(_njd: &mut Njd) {}

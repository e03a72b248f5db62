//! `njd_set_accent_phrase`.

use super::Njd;

/// `njd_set_accent_phrase`.
pub fn apply(_njd: &mut Njd) {}

//! `njd_set_accent_type`.

use super::Njd;

/// `njd_set_accent_type`.
pub fn apply(_njd: &mut Njd) {}

//! `njd_set_pronunciation`.

use super::Njd;

/// `njd_set_pronunciation`.
pub fn apply(_njd: &mut Njd) {}

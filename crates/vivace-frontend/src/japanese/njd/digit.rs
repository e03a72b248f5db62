//! `njd_set_digit`.

use super::Njd;

/// `njd_set_digit`.
pub fn apply(_njd: &mut Njd) {}

//! pyopenjtalk-plus's `apply_original_rule_before_chaining`.

use super::Feature;

/// `apply_original_rule_before_chaining`.
pub fn apply(_features: &mut [Feature]) {}

//! OpenJTalk's `njd_set_long_vowel_rule_utf_8.h` (pyopenjtalk-plus 0.4.1.post9's fork), transcribed:
//! Copyright (c) 2008-2016 Nagoya Institute of Technology, Department of
//! Computer Science; BSD-3-Clause (its licence travels in docs/PHONEMIZATION.md).

#![allow(dead_code)]

pub(super) const NJD_SET_LONG_VOWEL_TABLE: &[&str] = &[
    "エイ", "エー", "ケイ", "ケー", "セイ", "セー", "テイ", "テー", "ネイ", "ネー", "ヘイ", "ヘー",
    "メイ", "メー", "レイ", "レー", "ゲイ", "ゲー", "ゼイ", "ゼー", "デイ", "デー", "ベイ", "ベー",
    "ペイ", "ペー", "ヱイ", "ヱー",
];

//! OpenJTalk's `njd_set_accent_type_rule_utf_8.h` (pyopenjtalk-plus 0.4.1.post9's fork), transcribed:
//! Copyright (c) 2008-2016 Nagoya Institute of Technology, Department of
//! Computer Science; BSD-3-Clause (its licence travels in docs/PHONEMIZATION.md).

#![allow(dead_code)]

pub(super) const NJD_SET_ACCENT_TYPE_KAZU: &str = "数";
pub(super) const NJD_SET_ACCENT_TYPE_ICHI: &str = "一";
pub(super) const NJD_SET_ACCENT_TYPE_NI: &str = "二";
pub(super) const NJD_SET_ACCENT_TYPE_SAN: &str = "三";
pub(super) const NJD_SET_ACCENT_TYPE_YON: &str = "四";
pub(super) const NJD_SET_ACCENT_TYPE_GO: &str = "五";
pub(super) const NJD_SET_ACCENT_TYPE_ROKU: &str = "六";
pub(super) const NJD_SET_ACCENT_TYPE_NANA: &str = "七";
pub(super) const NJD_SET_ACCENT_TYPE_HACHI: &str = "八";
pub(super) const NJD_SET_ACCENT_TYPE_KYUU: &str = "九";
pub(super) const NJD_SET_ACCENT_TYPE_JYUU: &str = "十";
pub(super) const NJD_SET_ACCENT_TYPE_HYAKU: &str = "百";
pub(super) const NJD_SET_ACCENT_TYPE_SEN: &str = "千";
pub(super) const NJD_SET_ACCENT_TYPE_MAN: &str = "万";
pub(super) const NJD_SET_ACCENT_TYPE_OKU: &str = "億";
pub(super) const NJD_SET_ACCENT_TYPE_CHOU: &str = "兆";
pub(super) const NJD_SET_ACCENT_TYPE_SUU: &str = "数";
pub(super) const NJD_SET_ACCENT_TYPE_NAN: &str = "何";
pub(super) const NJD_SET_ACCENT_TYPE_IKU: &str = "幾";

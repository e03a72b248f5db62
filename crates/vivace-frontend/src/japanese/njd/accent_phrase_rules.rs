//! OpenJTalk's `njd_set_accent_phrase_rule_utf_8.h` (pyopenjtalk-plus 0.4.1.post9's fork), transcribed:
//! Copyright (c) 2008-2016 Nagoya Institute of Technology, Department of
//! Computer Science; BSD-3-Clause (its licence travels in docs/PHONEMIZATION.md).

#![allow(dead_code)]

pub(super) const NJD_SET_ACCENT_PHRASE_MEISHI: &str = "名詞";
pub(super) const NJD_SET_ACCENT_PHRASE_DAIMEISHI: &str = "代名詞";
pub(super) const NJD_SET_ACCENT_PHRASE_KEIYOUSHI: &str = "形容詞";
pub(super) const NJD_SET_ACCENT_PHRASE_DOUSHI: &str = "動詞";
pub(super) const NJD_SET_ACCENT_PHRASE_FUKUSHI: &str = "副詞";
pub(super) const NJD_SET_ACCENT_PHRASE_SETSUZOKUSHI: &str = "接続詞";
pub(super) const NJD_SET_ACCENT_PHRASE_RENTAISHI: &str = "連体詞";
pub(super) const NJD_SET_ACCENT_PHRASE_JODOUSHI: &str = "助動詞";
pub(super) const NJD_SET_ACCENT_PHRASE_KANDOUSHI: &str = "感動詞";
pub(super) const NJD_SET_ACCENT_PHRASE_JOSHI: &str = "助詞";
pub(super) const NJD_SET_ACCENT_PHRASE_KIGOU: &str = "記号";
pub(super) const NJD_SET_ACCENT_PHRASE_KOYUU_MEISHI: &str = "固有名詞";
pub(super) const NJD_SET_ACCENT_PHRASE_KEIYOUDOUSHI_GOKAN: &str = "形容動詞語幹";
pub(super) const NJD_SET_ACCENT_PHRASE_FUKUSHI_KANOU: &str = "副詞可能";
pub(super) const NJD_SET_ACCENT_PHRASE_SETSUBI: &str = "接尾";
pub(super) const NJD_SET_ACCENT_PHRASE_JIRITSU: &str = "自立";
pub(super) const NJD_SET_ACCENT_PHRASE_HIJIRITSU: &str = "非自立";
pub(super) const NJD_SET_ACCENT_PHRASE_IPPAN: &str = "一般";
pub(super) const NJD_SET_ACCENT_PHRASE_RENYOU: &str = "連用";
pub(super) const NJD_SET_ACCENT_PHRASE_SETSUZOKUJOSHI: &str = "接続助詞";
pub(super) const NJD_SET_ACCENT_PHRASE_SAHEN_SETSUZOKU: &str = "サ変接続";
pub(super) const NJD_SET_ACCENT_PHRASE_TE: &str = "て";
pub(super) const NJD_SET_ACCENT_PHRASE_DE: &str = "で";
pub(super) const NJD_SET_ACCENT_PHRASE_SETTOUSHI: &str = "接頭詞";
pub(super) const NJD_SET_ACCENT_PHRASE_SEI: &str = "姓";
pub(super) const NJD_SET_ACCENT_PHRASE_MEI: &str = "名";

//! Piper's Japanese front end (`phoneme_type: japanese`), being ported:
//! piper-tts 1.8 reads Japanese with pyopenjtalk-plus (OpenJTalk: MeCab
//! over NAIST-JDIC, then NJD's reading and accent rules, then full-context
//! labels). [`mecab`] is its first stage.

pub mod labels;
pub mod mecab;
pub mod njd;
pub mod prosody;
pub mod text2mecab;

//! Runs NJD on the goldens' MeCab features, the labels on the goldens' NJD
//! and Piper's label reading on the goldens' labels, and prints what
//! differs from pyopenjtalk-plus and piper-tts (`tools/make_njd_goldens.py`):
//! the debugging view of the CI parity test.
//!
//!     cargo run --release -p vivace-frontend --example njd_goldens -- \
//!         crates/vivace/tests/fixtures/japanese/njd.json [MAX_SHOWN]

use vivace_frontend::japanese::njd::{self, Feature};
use vivace_frontend::japanese::sudachi::Sudachi;
use vivace_frontend::japanese::{labels, postprocess, prosody, JapanesePhonemizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or(
        "usage: njd_goldens NJD_JSON [MAX_SHOWN [OPENJTALK_DICTIONARY_DIR [SUDACHI_DIR]]]",
    )?;
    let max_shown: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let dictionary = args.next();
    let sudachi = args.next();
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    // The dictionary, when given, also reads a 々 again in post-processing,
    // and Sudachi, when given, the kanji with several readings.
    let mut japanese = dictionary
        .as_ref()
        .map(|dir| JapanesePhonemizer::load(std::path::Path::new(dir)))
        .transpose()?;
    if let (Some(j), Some(dir)) = (japanese.take(), &sudachi) {
        japanese = Some(j.with_sudachi(Sudachi::open(std::path::Path::new(dir))?));
    }
    let reanalyze = |text: &str| {
        japanese
            .as_ref()
            .map_or_else(Vec::new, |j| j.openjtalk_frontend(text))
    };
    let cases = goldens["cases"].as_array().ok_or("no cases")?;
    let (mut failed, mut shown) = (0, 0);
    let (mut label_cases, mut label_failed, mut phone_failed, mut post_failed) = (0, 0, 0, 0);
    for case in cases {
        let mecab: Vec<String> = serde_json::from_value(case["mecab"].clone())?;
        let want: Vec<Feature> = serde_json::from_value(case["njd"].clone())?;
        if let Some(want_labels) = case.get("labels") {
            label_cases += 1;
            let want_labels: Vec<String> = serde_json::from_value(want_labels.clone())?;
            let got_labels = labels::make_label(&want);
            if got_labels != want_labels {
                label_failed += 1;
                if label_failed <= max_shown {
                    println!("== labels {}", case["text"]);
                    for i in 0..got_labels.len().max(want_labels.len()) {
                        let (g, w) = (got_labels.get(i), want_labels.get(i));
                        if g != w {
                            println!(
                                " - {}\n + {}",
                                w.map_or("(none)", |s| s),
                                g.map_or("(none)", |s| s)
                            );
                        }
                    }
                }
            }
            let want_phones: Vec<String> = serde_json::from_value(case["phones"].clone())?;
            let got_phones = prosody::phones_from_labels(&want_labels);
            if got_phones != want_phones {
                phone_failed += 1;
                if phone_failed <= max_shown {
                    println!(
                        "== phones {}\n - {want_phones:?}\n + {got_phones:?}",
                        case["text"]
                    );
                }
            }
        }
        let mut want_post = match case.get("post_njd") {
            Some(whole) => serde_json::from_value(whole.clone())?,
            None => want.clone(),
        };
        for change in case
            .get("post")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let (i, field, value) = (
                change[0].as_u64().unwrap_or(0) as usize,
                &change[1],
                &change[2],
            );
            let mut node = serde_json::to_value(&want_post[i])?;
            node[field.as_str().unwrap_or("")] = value.clone();
            want_post[i] = serde_json::from_value(node)?;
        }
        let mut got_post = want.clone();
        match &japanese {
            Some(j) => j.postprocess(case["text"].as_str().unwrap_or(""), &mut got_post),
            None => {
                let helpers = postprocess::Helpers {
                    nani: None,
                    sudachi: None,
                    reanalyze: &reanalyze,
                };
                postprocess::apply(case["text"].as_str().unwrap_or(""), &mut got_post, &helpers);
            }
        }
        if got_post != want_post {
            post_failed += 1;
            if post_failed <= max_shown {
                println!("== post {}", case["text"]);
                for (g, w) in got_post.iter().zip(&want_post) {
                    if g != w {
                        println!(" - {}\n + {}", line(w), line(g));
                    }
                }
            }
        }
        let got = njd::run(&mecab);
        if got == want {
            continue;
        }
        failed += 1;
        if shown < max_shown {
            shown += 1;
            println!("== {}", case["text"]);
            for i in 0..got.len().max(want.len()) {
                match (got.get(i), want.get(i)) {
                    (Some(g), Some(w)) if g == w => println!("   {}", line(g)),
                    (g, w) => {
                        println!(" - {}", w.map_or("(none)".into(), line));
                        println!(" + {}", g.map_or("(none)".into(), line));
                    }
                }
            }
        }
    }
    println!("NJD: {} of {} texts differ", failed, cases.len());
    println!("labels: {label_failed} of {label_cases} differ; phones: {phone_failed} differ; post: {post_failed} differ");
    if let Some(japanese) = &japanese {
        let piper = goldens["piper"].as_array().ok_or("no piper cases")?;
        let mut piper_failed = 0;
        for case in piper {
            let want: Vec<Vec<String>> = serde_json::from_value(case["phonemes"].clone())?;
            let got = japanese.phonemize(case["text"].as_str().unwrap_or(""));
            if got != want {
                piper_failed += 1;
                println!(
                    "== piper {}\n - {}\n + {}",
                    case["text"],
                    join(&want),
                    join(&got)
                );
            }
        }
        println!("piper: {piper_failed} of {} texts differ", piper.len());
    }
    Ok(())
}

fn join(sentences: &[Vec<String>]) -> String {
    sentences
        .iter()
        .map(|s| s.concat())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn line(f: &Feature) -> String {
    f.to_string()
}

//! Runs NJD on the goldens' MeCab features and prints every node that
//! differs from pyopenjtalk-plus (`tools/make_njd_goldens.py`), with a
//! per-field count: the debugging view of the CI parity test.
//!
//!     cargo run --release -p vivace-frontend --example njd_goldens -- \
//!         crates/vivace/tests/fixtures/japanese/njd.json [MAX_SHOWN]

use vivace_frontend::japanese::njd::{self, Feature};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: njd_goldens NJD_JSON [MAX_SHOWN]")?;
    let max_shown: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let cases = goldens["cases"].as_array().ok_or("no cases")?;
    let (mut failed, mut shown) = (0, 0);
    for case in cases {
        let mecab: Vec<String> = serde_json::from_value(case["mecab"].clone())?;
        let want: Vec<Feature> = serde_json::from_value(case["njd"].clone())?;
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
    println!("{} of {} texts differ", failed, cases.len());
    Ok(())
}

fn line(f: &Feature) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}/{},{},{}",
        f.string,
        f.pos,
        f.pos_group1,
        f.pos_group2,
        f.pos_group3,
        f.ctype,
        f.cform,
        f.orig,
        f.read,
        f.pron,
        f.acc,
        f.mora_size,
        f.chain_rule,
        f.chain_flag
    )
}

//! Tokenizes the goldens' texts with Vivace's Sudachi and prints what
//! differs from SudachiPy (`tools/make_sudachi_goldens.py`): the debugging
//! view of the CI parity test.
//!
//!     cargo run --release -p vivace-frontend --example sudachi_goldens -- \
//!         crates/vivace/tests/fixtures/japanese/sudachi.json SUDACHI_DIR [MAX_SHOWN]

use vivace_frontend::japanese::sudachi::Sudachi;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sudachi_goldens SUDACHI_JSON SUDACHI_DIR [MAX_SHOWN]";
    let path = args.next().ok_or(usage)?;
    let dir = args.next().ok_or(usage)?;
    let max_shown: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let sudachi = Sudachi::open(std::path::Path::new(&dir))?;
    let goldens: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let cases = goldens["cases"].as_array().ok_or("no cases")?;
    let mut failed = 0;
    let started = std::time::Instant::now();
    let mut chars = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap_or("");
        chars += text.chars().count();
        let want: Vec<(String, String)> = serde_json::from_value(case["words"].clone())?;
        let got: Vec<(String, String)> = sudachi
            .tokenize(text)
            .map_err(|_| "too long")?
            .into_iter()
            .map(|m| (m.surface, m.reading))
            .collect();
        if got != want {
            failed += 1;
            if failed <= max_shown {
                println!("== {text:?}\n - {want:?}\n + {got:?}");
            }
        }
    }
    println!(
        "{failed} of {} texts differ ({:.1} µs per character)",
        cases.len(),
        started.elapsed().as_secs_f64() * 1e6 / chars.max(1) as f64
    );
    Ok(())
}

//! `vivace romanize`: any script to the Latin alphabet with uroman, as the
//! `uroman` command prints it: one line per text argument, else one per
//! line of stdin (a line may start with `::lcode xxx` to name its
//! language).

use std::io::{BufRead, Write};

use anyhow::{Context, Result};

/// Flags of `vivace romanize`.
#[derive(Debug, clap::Args)]
pub(crate) struct RomanizeArgs {
    /// ISO 639-3 code of the text's language (`hin`, `ukr`, `jpn`, ...):
    /// selects uroman's language-specific rules.
    #[arg(long, short = 'l', visible_alias = "lcode")]
    language: Option<String>,
    /// The texts, each romanized onto its own line; stdin when absent.
    text: Vec<String>,
}

pub(crate) fn romanize(args: &RomanizeArgs) -> Result<()> {
    let uroman = vivace::front_ends::uroman()?;
    let lcode = args.language.as_deref();
    let mut out = std::io::stdout().lock();
    if !args.text.is_empty() {
        for text in &args.text {
            writeln!(
                out,
                "{}",
                uroman.romanize_by_token(text.trim_end_matches('\n'), lcode)
            )?;
        }
        return Ok(());
    }
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read stdin (it must be UTF-8)")?;
        match line_language(&line) {
            Some((prefix, code, rest)) => writeln!(
                out,
                "{prefix}{}",
                uroman.romanize_by_token(rest, Some(code))
            )?,
            None => writeln!(out, "{}", uroman.romanize_by_token(&line, lcode))?,
        }
    }
    Ok(())
}

/// `::lcode xxx rest` (uroman's per-line language): the prefix as written,
/// the code and the text.
fn line_language(line: &str) -> Option<(&str, &str, &str)> {
    let after = line.strip_prefix("::lcode")?;
    let spaces = after.len() - after.trim_start().len();
    if spaces == 0 {
        return None;
    }
    let code_start = 7 + spaces;
    let code = line.get(code_start..code_start + 3)?;
    if !code.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let rest = &line[code_start + 3..];
    let gap = rest.len() - rest.trim_start().len();
    if gap == 0 {
        return None;
    }
    Some((&line[..code_start + 3 + gap], code, &rest[gap..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcode_prefixes_are_read_as_uroman_reads_them() {
        assert_eq!(
            line_language("::lcode ukr Київ"),
            Some(("::lcode ukr ", "ukr", "Київ"))
        );
        assert_eq!(
            line_language("::lcode  hin  नमस्ते"),
            Some(("::lcode  hin  ", "hin", "नमस्ते"))
        );
        assert_eq!(line_language("::lcode UKR text"), None);
        assert_eq!(line_language("plain text"), None);
    }
}

//! Sizes as users write them: `2G`, `1536M`, `800MiB`, `4096` (bytes).

use anyhow::{bail, Context, Result};

/// Parses a size with an optional binary unit suffix (K, M, G, T; `B`/`iB` accepted after it).
pub fn parse(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if number.is_empty() {
        bail!("size {text:?} does not start with a number; write e.g. 2G, 1536M or 4294967296");
    }
    let number: u64 = number
        .parse()
        .with_context(|| format!("size {text:?} is too large"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => {
            bail!("size {text:?} has an unknown unit {other:?}; use K, M, G or T (powers of 1024)")
        }
    };
    number
        .checked_mul(1 << shift)
        .with_context(|| format!("size {text:?} does not fit in 64 bits"))
}

/// Formats bytes for messages: `2 GiB`, `1536 MiB`, `4097 bytes`.
pub fn human(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    if bytes >= 1 << 20 {
        return format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64);
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("2G").unwrap(), 2 << 30);
        assert_eq!(parse("1536M").unwrap(), 1536 << 20);
        assert_eq!(parse("800MiB").unwrap(), 800 << 20);
        assert_eq!(parse("5g").unwrap(), 5 << 30);
        assert_eq!(parse("4096").unwrap(), 4096);
        assert_eq!(parse("1T").unwrap(), 1 << 40);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "G", "2X", "-1G", "1.5G", "99999999999T"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(2 << 30), "2 GiB");
        assert_eq!(human(1536 << 20), "1536 MiB");
        assert_eq!(human(100), "100 bytes");
    }
}

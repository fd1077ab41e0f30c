//! Sizes as people write them in kftray.toml: "10MiB", "500kB", or a number of bytes.

/// Why a text is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// It does not start with a number.
    #[error("expected a number, then a unit such as KiB or MB")]
    NoNumber,
    /// A unit this does not know.
    #[error("unknown unit `{0}` (B, kB, KiB, MB, MiB, GB or GiB)")]
    UnknownUnit(String),
    /// More than 64 bits of bytes.
    #[error("the size is too large")]
    TooLarge,
}

/// Bytes in `text`: a number and an optional unit, decimal (kB, MB, GB) or binary (KiB, MiB,
/// GiB), as `ls -h` and `du` users write them.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(SizeError::NoNumber);
    }
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| SizeError::TooLarge)?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" | "k" => 1000,
        "KiB" | "K" => 1 << 10,
        "MB" | "M" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" | "G" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => return Err(SizeError::UnknownUnit(other.to_owned())),
    };
    number.checked_mul(scale).ok_or(SizeError::TooLarge)
}

/// A size as kftray.toml writes it, exactly: "10MiB", "64KiB", or the bytes.
pub fn size_text(bytes: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

/// A size for people, exact below 1 KiB and with one decimal above: "512 B", "1.5 MiB".
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("500 kB"), Ok(500_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(
            parse_size("3 parsecs"),
            Err(SizeError::UnknownUnit("parsecs".into()))
        );
        assert_eq!(parse_size("MiB"), Err(SizeError::NoNumber));
        assert_eq!(parse_size("99999999999999 GiB"), Err(SizeError::TooLarge));
        assert_eq!(size_text(10 << 20), "10MiB");
        assert_eq!(size_text(1500), "1500");
        assert_eq!(parse_size(&size_text(3 << 10)), Ok(3 << 10));
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(10 << 20), "10.0 MiB");
    }
}

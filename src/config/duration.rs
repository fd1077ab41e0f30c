//! Durations as people write them in kftray.toml and on the command line.

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration")]
    Empty,
    /// A unit or other text where a number belongs.
    #[error("expected a number at `{at}`")]
    NoNumber {
        /// The text from there on.
        at: String,
    },
    /// More than 64 bits of it.
    #[error("`{number}` is too large")]
    TooLarge {
        /// The number as written.
        number: String,
    },
    /// A number alone: `60` could be seconds or minutes.
    #[error("`{number}` has no unit")]
    NoUnit {
        /// The number as written.
        number: String,
    },
    /// Not one of ms, s, m, h, d.
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// It adds up to nothing.
    #[error("the duration must be more than zero")]
    Zero,
}

/// A human duration: one or more `<number><unit>` with units ms, s, m, h, d ("90s", "1h30m").
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if s.trim().is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::NoNumber {
                at: rest.to_owned(),
            });
        }
        let (number, tail) = rest.split_at(digits);
        let tail = tail.trim_start();
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let n: u64 = number.parse().map_err(|_| DurationError::TooLarge {
            number: number.to_owned(),
        })?;
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "" => {
                return Err(DurationError::NoUnit {
                    number: number.to_owned(),
                });
            }
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_owned(),
                });
            }
        };
        total = total.saturating_add(part);
        rest = tail.trim_start();
    }
    if total.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(total)
}

/// Formats a duration the way `parse_duration` reads it ("1h30m", "60s", "500ms").
pub(crate) fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(
            parse_duration("60").unwrap_err().to_string(),
            "`60` has no unit"
        );
        assert_eq!(
            parse_duration("5 minutes").unwrap_err().to_string(),
            "unknown unit `minutes`"
        );
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Err(DurationError::Zero));
        assert!(parse_duration("s").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }
}

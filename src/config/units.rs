//! Durations and percentages as written in configuration (`"1h30m"`, `"25%"`):
//! parsing, why a text does not parse ([`UnitError`]), and the checked values
//! the typed configuration holds ([`DurationText`], [`Percent`]), which keep
//! the text they were written as.
//!
//! Pure parsing; no knowledge of where the values come from.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encode::text::excerpt;

/// Why a duration or a percentage does not parse. The texts are kept as
/// written; messages show them escaped and bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A duration of nothing but blanks.
    #[error("empty duration")]
    EmptyDuration,
    /// A duration where a number should start at `rest`.
    #[error("{} is not a duration: expected a number at {}", excerpt(.text), excerpt(.rest))]
    NumberExpected { text: String, rest: String },
    /// A duration's number does not fit in 64 bits.
    #[error("{}: number too large", excerpt(.text))]
    NumberTooLarge { text: String },
    /// A duration's last number has no unit.
    #[error("{} is missing a unit (ms, s, m, h or d)", excerpt(.text))]
    MissingUnit { text: String },
    /// A duration's unit is none of ms, s, m, h, d.
    #[error("{} has an unknown unit {} (use ms, s, m, h or d)", excerpt(.text), excerpt(.unit))]
    UnknownUnit { text: String, unit: String },
    /// A percentage without its `%`.
    #[error("{} is not a percentage: write it like \"25%\"", excerpt(.text))]
    NoPercentSign { text: String },
    /// A percentage whose number is not a whole number.
    #[error("{} is not a percentage: write a whole number followed by %", excerpt(.text))]
    NotWholePercent { text: String },
    /// A percentage above 100.
    #[error("{} is more than 100%", excerpt(.text))]
    OverHundredPercent { text: String },
}

/// Parse `500ms`, `30s`, `5m`, `1h30m`, `2d`. A bare `0` means no wait.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(UnitError::EmptyDuration);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(UnitError::NumberExpected {
                text: text.to_string(),
                rest: rest.to_string(),
            });
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| UnitError::NumberTooLarge {
                text: text.to_string(),
            })?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86400)),
            "" => {
                return Err(UnitError::MissingUnit {
                    text: text.to_string(),
                })
            }
            other => {
                return Err(UnitError::UnknownUnit {
                    text: text.to_string(),
                    unit: other.to_string(),
                })
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Parse `"25%"` into 25. Accepts 0–100 (whole numbers).
pub fn parse_percent(text: &str) -> Result<u32, UnitError> {
    let Some(number) = text.trim().strip_suffix('%') else {
        return Err(UnitError::NoPercentSign {
            text: text.to_string(),
        });
    };
    let value: u32 = number
        .trim()
        .parse()
        .map_err(|_| UnitError::NotWholePercent {
            text: text.to_string(),
        })?;
    if value > 100 {
        return Err(UnitError::OverHundredPercent {
            text: text.to_string(),
        });
    }
    Ok(value)
}

/// A duration as written in configuration (`"5m"`), checked: the parsed
/// length and the text it was written as (what plans and messages show).
/// Serialized as that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationText {
    text: String,
    length: Duration,
}

impl DurationText {
    pub fn parse(text: &str) -> Result<DurationText, UnitError> {
        Ok(DurationText {
            length: parse_duration(text)?,
            text: text.to_string(),
        })
    }

    /// How long it is.
    pub fn get(&self) -> Duration {
        self.length
    }

    /// The text as written in configuration.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for DurationText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DurationText::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A whole percentage from 0 to 100, written `"25%"` in configuration and
/// in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    pub const ALL: Percent = Percent(100);

    /// `None` above 100.
    pub fn new(value: u32) -> Option<Percent> {
        (value <= 100).then_some(Percent(value))
    }

    pub fn parse(text: &str) -> Result<Percent, UnitError> {
        parse_percent(text).map(Percent)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// This share of `count`, rounded down.
    pub fn of(self, count: usize) -> usize {
        count * self.0 as usize / 100
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Percent::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("25%"), Ok(25));
        assert_eq!(parse_percent("100%"), Ok(100));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("25").is_err());
        assert!(parse_percent("x%").is_err());
    }

    #[test]
    fn checked_values_keep_their_text() {
        let bake: DurationText = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(bake.get(), Duration::from_secs(5400));
        assert_eq!(serde_json::to_string(&bake).unwrap(), "\"1h30m\"");
        assert!(serde_json::from_str::<DurationText>("\"5\"").is_err());

        let share: Percent = serde_json::from_str("\"25%\"").unwrap();
        assert_eq!(share.get(), 25);
        assert_eq!(share.of(10), 2);
        assert_eq!(serde_json::to_string(&share).unwrap(), "\"25%\"");
        assert!(serde_json::from_str::<Percent>("\"101%\"").is_err());
        assert_eq!(Percent::new(101), None);
    }

    #[test]
    fn hostile_text_is_shown_escaped_and_bounded() {
        let long = format!("\u{1b}[2J{}", "m".repeat(1 << 20));
        for problem in [
            parse_duration(&long).unwrap_err().to_string(),
            parse_percent(&long).unwrap_err().to_string(),
        ] {
            assert!(problem.len() < 300, "{} bytes", problem.len());
            assert!(!problem.contains('\u{1b}'), "{problem}");
            assert!(problem.contains("\\u{1b}[2J"), "{problem}");
        }
    }
}

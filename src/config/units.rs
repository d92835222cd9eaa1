//! Durations and percentages as written in configuration (`"1h30m"`, `"25%"`).
//!
//! Pure parsing; no knowledge of where the values come from.

use std::time::Duration;

/// Parse `500ms`, `30s`, `5m`, `1h30m`, `2d`. A bare `0` means no wait.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "\"{text}\" is not a duration: expected a number at \"{rest}\""
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("\"{text}\": number too large"))?;
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
            "" => return Err(format!("\"{text}\" is missing a unit (ms, s, m, h or d)")),
            other => {
                return Err(format!(
                    "\"{text}\" has an unknown unit \"{other}\" (use ms, s, m, h or d)"
                ))
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Parse `"25%"` into 25. Accepts 0–100 (whole numbers).
pub fn parse_percent(text: &str) -> Result<u32, String> {
    let Some(number) = text.trim().strip_suffix('%') else {
        return Err(format!(
            "\"{text}\" is not a percentage: write it like \"25%\""
        ));
    };
    let value: u32 = number.trim().parse().map_err(|_| {
        format!("\"{text}\" is not a percentage: write a whole number followed by %")
    })?;
    if value > 100 {
        return Err(format!("\"{text}\" is more than 100%"));
    }
    Ok(value)
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
}

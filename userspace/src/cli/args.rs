//! Value parsers shared by the commands: every duration has a range (a huge one would
//! overflow a deadline and panic), and every name goes through `topology::names`.

/// Parses seconds within `min..=max`, with one clear error otherwise.
fn seconds_in(s: &str, min: f64, max: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a number of seconds", s.escape_debug()))?;
    if !v.is_finite() || v < min || v > max {
        return Err(format!(
            "{} seconds is out of range: give {min} to {max} seconds",
            s.escape_debug()
        ));
    }
    Ok(v)
}

/// One year: longer than any trace or serve run anyone means.
pub const LONG_MAX: f64 = 365.0 * 24.0 * 3600.0;

/// `trace --duration`.
pub fn run_seconds(s: &str) -> Result<f64, String> {
    seconds_in(s, 0.0, LONG_MAX)
}

/// `trace --reply-timeout`.
pub fn reply_timeout(s: &str) -> Result<f64, String> {
    seconds_in(s, 0.01, 3600.0)
}

/// `serve --refresh`.
pub fn refresh(s: &str) -> Result<f64, String> {
    seconds_in(s, 0.05, 3600.0)
}

/// `bench --duration` (per measurement).
pub fn bench_seconds(s: &str) -> Result<f64, String> {
    seconds_in(s, 0.1, 3600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_negative_and_odd_durations_are_refused() {
        for bad in ["1e19", "-1", "NaN", "inf", "x", ""] {
            assert!(run_seconds(bad).is_err(), "{bad}");
            assert!(refresh(bad).is_err(), "{bad}");
        }
        assert!(refresh("0").is_err());
        assert_eq!(run_seconds("2.5"), Ok(2.5));
        assert_eq!(reply_timeout("1"), Ok(1.0));
    }
}

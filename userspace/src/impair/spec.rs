//! What an impairment is and how it is written: `loss: 1%`, `rate: 100mbit`,
//! `delay: 20ms`. Pure parsing and validation, shared by the topology file and the CLI.
//! Values are kept as integers (parts per billion, bits per second, nanoseconds) so
//! equality and the kernel's thresholds are exact.

use std::fmt;

/// A probability, in parts per billion (100% = 1_000_000_000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(pub u32);

/// A rate in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

/// A duration in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nanos(pub u64);

pub const PPB_100: u32 = 1_000_000_000;
const MIN_RATE: u64 = 8_000;
const MAX_RATE: u64 = 400_000_000_000;
const MAX_DELAY: u64 = 60_000_000_000;

/// The settings of one interface end, applied to packets leaving it.
/// In JSON each setting is its text (`"1%"`, `"10mbit"`, `"5ms"`), as in a topology file.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Impairment {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text")]
    #[schemars(with = "Option<String>")]
    pub loss: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text")]
    #[schemars(with = "Option<String>")]
    pub duplicate: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text")]
    #[schemars(with = "Option<String>")]
    pub corrupt: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text")]
    #[schemars(with = "Option<String>")]
    pub rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text")]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Nanos>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text")]
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Nanos>,
}

/// The keys of an `impair:` mapping, in the order they are shown.
pub const KEYS: [&str; 6] = ["loss", "duplicate", "corrupt", "rate", "delay", "jitter"];

/// A bad value: what is wrong, and how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub message: String,
    pub hint: String,
}

impl std::error::Error for SpecError {}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (fix: {})", self.message, self.hint)
    }
}

fn bad(message: impl Into<String>, hint: impl Into<String>) -> SpecError {
    SpecError {
        message: message.into(),
        hint: hint.into(),
    }
}

impl Impairment {
    /// Sets `key` from its text. `key` must be one of [`KEYS`].
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), SpecError> {
        match key {
            "loss" => self.loss = Some(parse_percent(key, text)?),
            "duplicate" => self.duplicate = Some(parse_percent(key, text)?),
            "corrupt" => self.corrupt = Some(parse_percent(key, text)?),
            "rate" => self.rate = Some(parse_rate(text)?),
            "delay" => self.delay = Some(parse_duration(key, text)?),
            "jitter" => self.jitter = Some(parse_duration(key, text)?),
            _ => {
                return Err(bad(
                    format!("unknown impairment `{key}`"),
                    format!("use one of {}", KEYS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Checks the settings together (after every key was set).
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.is_empty() {
            return Err(bad(
                "the impairment sets nothing",
                format!("give at least one of {}", KEYS.join(", ")),
            ));
        }
        if let Some(j) = self.jitter {
            match self.delay {
                None => {
                    return Err(bad(
                        "jitter without delay",
                        "add `delay` (jitter varies the delay around it)",
                    ));
                }
                Some(d) if j > d => {
                    return Err(bad(
                        format!("jitter {j} is larger than the delay {d}"),
                        "use a jitter of at most the delay",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        *self == Impairment::default()
    }

    /// Loss, duplication or corruption: the eBPF program's part.
    pub fn needs_ebpf(&self) -> bool {
        self.loss.is_some() || self.duplicate.is_some() || self.corrupt.is_some()
    }

    /// Delay or jitter: only netem can hold packets back.
    pub fn needs_netem(&self) -> bool {
        self.delay.is_some() || self.jitter.is_some()
    }

    /// `(key, value)` of every setting, in [`KEYS`] order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut push = |k, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        push("loss", self.loss.map(|v| v.to_string()));
        push("duplicate", self.duplicate.map(|v| v.to_string()));
        push("corrupt", self.corrupt.map(|v| v.to_string()));
        push("rate", self.rate.map(|v| v.to_string()));
        push("delay", self.delay.map(|v| v.to_string()));
        push("jitter", self.jitter.map(|v| v.to_string()));
        out
    }
}

impl fmt::Display for Impairment {
    /// `loss 1% duplicate 0.5% rate 100mbit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .entries()
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

impl Percent {
    /// The kernel's threshold against a 32-bit random number: `rand < threshold`.
    pub fn threshold(self) -> u64 {
        (u64::from(self.0) << 32) / u64::from(PPB_100)
    }

    pub fn fraction(self) -> f64 {
        f64::from(self.0) / f64::from(PPB_100)
    }
}

/// Splits "12.5" into (12, 5, 1 decimal); `None` when it is not a plain decimal.
fn decimal(text: &str) -> Option<(u64, u64, u32)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || int.len() > 12 || frac.len() > 9 {
        return None;
    }
    let i = if int.is_empty() { 0 } else { int.parse().ok()? };
    let f = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    Some((i, f, frac.len() as u32))
}

/// `value × scale`, where value is a decimal split by [`decimal`]; `None` on overflow
/// or when precision would be lost.
fn scaled(int: u64, frac: u64, digits: u32, scale: u64) -> Option<u64> {
    let pow = 10u64.checked_pow(digits)?;
    let whole = int.checked_mul(scale)?;
    let part = frac.checked_mul(scale)?;
    if !part.is_multiple_of(pow) {
        return None;
    }
    whole.checked_add(part / pow)
}

pub fn parse_percent(key: &str, text: &str) -> Result<Percent, SpecError> {
    let t = text.trim();
    let Some(num) = t.strip_suffix('%') else {
        return Err(bad(
            format!("{key} `{t}` has no unit"),
            format!("write a percentage like `{key}: 1%`"),
        ));
    };
    let (i, f, d) = decimal(num.trim()).ok_or_else(|| {
        bad(
            format!("{key} `{t}` is not a number"),
            format!("write a percentage like `{key}: 0.5%`"),
        )
    })?;
    // 1% = 10_000_000 parts per billion.
    let ppb = scaled(i, f, d, 10_000_000).ok_or_else(|| {
        bad(
            format!("{key} `{t}` is too precise or too large"),
            "use at most 7 decimals, between 0% and 100%",
        )
    })?;
    if ppb > u64::from(PPB_100) {
        return Err(bad(
            format!("{key} {t} is out of range"),
            "use a percentage from 0% to 100%",
        ));
    }
    Ok(Percent(ppb as u32))
}

pub fn parse_rate(text: &str) -> Result<Rate, SpecError> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    // tc's units: bit-based and byte-based (bps = bytes per second).
    const UNITS: [(&str, u64); 9] = [
        ("tbit", 1_000_000_000_000),
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
        ("gbps", 8_000_000_000),
        ("mbps", 8_000_000),
        ("kbps", 8_000),
        ("bps", 8),
        ("bit", 1),
    ];
    let hint = "write a rate like 100mbit, 1gbit, 512kbit or 10mbps (bytes)";
    let Some((num, scale)) = UNITS
        .iter()
        .find_map(|(u, s)| lower.strip_suffix(u).map(|n| (n, *s)))
    else {
        return Err(bad(format!("rate `{t}` has no unit"), hint));
    };
    let (i, f, d) =
        decimal(num.trim()).ok_or_else(|| bad(format!("rate `{t}` is not a number"), hint))?;
    let bits = scaled(i, f, d, scale)
        .ok_or_else(|| bad(format!("rate `{t}` is not a whole number of bits"), hint))?;
    if !(MIN_RATE..=MAX_RATE).contains(&bits) {
        return Err(bad(
            format!("rate {t} is out of range"),
            "use a rate from 8kbit to 400gbit",
        ));
    }
    Ok(Rate(bits))
}

pub fn parse_duration(key: &str, text: &str) -> Result<Nanos, SpecError> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    const UNITS: [(&str, u64); 4] = [
        ("us", 1_000),
        ("ms", 1_000_000),
        ("ns", 1),
        ("s", 1_000_000_000),
    ];
    let hint = format!("write a duration like `{key}: 20ms` (units: s, ms, us)");
    let Some((num, scale)) = UNITS
        .iter()
        .find_map(|(u, s)| lower.strip_suffix(u).map(|n| (n, *s)))
    else {
        return Err(bad(format!("{key} `{t}` has no unit"), hint));
    };
    let (i, f, d) = decimal(num.trim())
        .ok_or_else(|| bad(format!("{key} `{t}` is not a number"), hint.clone()))?;
    let ns = scaled(i, f, d, scale)
        .ok_or_else(|| bad(format!("{key} `{t}` is finer than a nanosecond"), hint))?;
    if ns > MAX_DELAY {
        return Err(bad(format!("{key} {t} is out of range"), "use at most 60s"));
    }
    Ok(Nanos(ns))
}

/// Shortest exact decimal of `value / scale` (`15, 10` → "1.5").
fn trim_decimal(value: u64, scale: u64) -> String {
    let int = value / scale;
    let mut frac = value % scale;
    if frac == 0 {
        return int.to_string();
    }
    let mut width = scale.to_string().len() - 1;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    format!("{int}.{frac:0width$}")
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_decimal(u64::from(self.0), 10_000_000))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let (scale, unit) = match b {
            b if b >= 1_000_000_000_000 => (1_000_000_000_000, "tbit"),
            b if b >= 1_000_000_000 => (1_000_000_000, "gbit"),
            b if b >= 1_000_000 => (1_000_000, "mbit"),
            b if b >= 1_000 => (1_000, "kbit"),
            _ => (1, "bit"),
        };
        write!(f, "{}{unit}", trim_decimal(b, scale))
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let (scale, unit) = match n {
            0 => (1_000_000, "ms"),
            n if n >= 1_000_000_000 => (1_000_000_000, "s"),
            n if n >= 1_000_000 => (1_000_000, "ms"),
            n if n >= 1_000 => (1_000, "us"),
            _ => (1, "ns"),
        };
        write!(f, "{}{unit}", trim_decimal(n, scale))
    }
}

/// Serde as the same text a user writes (`"1%"`, `"100mbit"`, `"20ms"`).
mod text {
    use std::fmt::Display;

    use serde::{Deserialize, Deserializer, Serializer};

    pub trait Text: Sized + Display {
        fn parse_text(s: &str) -> Result<Self, super::SpecError>;
    }
    impl Text for super::Percent {
        fn parse_text(s: &str) -> Result<Self, super::SpecError> {
            super::parse_percent("value", s)
        }
    }
    impl Text for super::Rate {
        fn parse_text(s: &str) -> Result<Self, super::SpecError> {
            super::parse_rate(s)
        }
    }
    impl Text for super::Nanos {
        fn parse_text(s: &str) -> Result<Self, super::SpecError> {
            super::parse_duration("value", s)
        }
    }

    pub fn serialize<T: Text, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Text, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| T::parse_text(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_exact() {
        assert_eq!(parse_percent("loss", "1%").unwrap(), Percent(10_000_000));
        assert_eq!(parse_percent("loss", "0.5%").unwrap(), Percent(5_000_000));
        assert_eq!(parse_percent("loss", "100%").unwrap(), Percent(PPB_100));
        assert_eq!(parse_percent("loss", "0%").unwrap(), Percent(0));
        assert_eq!(parse_percent("loss", "0.0000001%").unwrap(), Percent(1));
        assert_eq!(Percent(PPB_100).threshold(), 1 << 32);
        assert_eq!(Percent(0).threshold(), 0);
        assert_eq!(Percent(5_000_000).to_string(), "0.5%");
        assert_eq!(Percent(PPB_100).to_string(), "100%");
    }

    #[test]
    fn hostile_percentages_are_rejected() {
        for t in [
            "1",
            "101%",
            "-1%",
            "1e3%",
            "%",
            "1.5.5%",
            "0x10%",
            "",
            "1 %%",
            "0.00000001%",
            "nan%",
            "99999999999999999999%",
        ] {
            assert!(parse_percent("loss", t).is_err(), "{t:?} accepted");
        }
    }

    #[test]
    fn rates_and_durations() {
        assert_eq!(parse_rate("100mbit").unwrap(), Rate(100_000_000));
        assert_eq!(parse_rate("1.5Gbit").unwrap(), Rate(1_500_000_000));
        assert_eq!(parse_rate("10mbps").unwrap(), Rate(80_000_000));
        assert_eq!(Rate(100_000_000).to_string(), "100mbit");
        assert_eq!(Rate(1_500_000_000).to_string(), "1.5gbit");
        for t in [
            "100",
            "1bit",
            "500tbit",
            "mbit",
            "-5mbit",
            "1.0000000001kbit",
        ] {
            assert!(parse_rate(t).is_err(), "{t:?} accepted");
        }
        assert_eq!(parse_duration("delay", "20ms").unwrap(), Nanos(20_000_000));
        assert_eq!(
            parse_duration("delay", "1.5s").unwrap(),
            Nanos(1_500_000_000)
        );
        assert_eq!(parse_duration("delay", "250us").unwrap(), Nanos(250_000));
        assert_eq!(Nanos(2_000_000).to_string(), "2ms");
        for t in ["20", "61s", "ms", "1h", "-1ms"] {
            assert!(parse_duration("delay", t).is_err(), "{t:?} accepted");
        }
    }

    #[test]
    fn combinations() {
        let mut i = Impairment::default();
        assert!(i.validate().is_err());
        i.set("jitter", "2ms").unwrap();
        assert!(i.validate().is_err());
        i.set("delay", "1ms").unwrap();
        assert!(i.validate().is_err());
        i.set("delay", "20ms").unwrap();
        i.set("loss", "1%").unwrap();
        i.validate().unwrap();
        assert!(i.needs_netem() && i.needs_ebpf());
        assert_eq!(i.to_string(), "loss 1% delay 20ms jitter 2ms");
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(json, r#"{"loss":"1%","delay":"20ms","jitter":"2ms"}"#);
        assert_eq!(serde_json::from_str::<Impairment>(&json).unwrap(), i);
        assert!(i.set("latency", "1ms").is_err());
    }
}

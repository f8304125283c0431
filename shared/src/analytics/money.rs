//! Money is integer micro-USD inside; outside it is a JSON number with exactly the decimals the
//! contract shows (4 or 2), written from the integer so no float ever rounds a cent away.

use serde::{Serialize, Serializer};

pub const MICROS_PER_USD: i64 = 1_000_000;

/// Parses a JSON number of USD into micro-USD exactly, from its decimal text.
/// More than six decimal places, a negative amount or more than `max_usd` is refused.
pub fn parse_usd(number: &serde_json::Number, max_usd: i64) -> Result<i64, String> {
    let text = number.to_string();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (
            m.to_owned(),
            e.parse::<i32>()
                .map_err(|_| "is not a decimal number".to_owned())?,
        ),
        None => (text.clone(), 0),
    };
    if mantissa.starts_with('-') {
        return Err("must not be negative".into());
    }
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((&mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    // value = digits × 10^(exponent − len(frac)); in micros: × 10^(6 + exponent − len(frac))
    let scale = 6 + exponent - frac_part.len() as i32;
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let micros: i128 = if scale >= 0 {
        if digits.len() as i32 + scale > 30 {
            return Err(format!("must be at most {max_usd} USD"));
        }
        digits
            .parse::<i128>()
            .map_err(|_| "is not a decimal number".to_owned())?
            * 10i128.pow(scale as u32)
    } else {
        let cut = (-scale) as usize;
        let (keep, dropped) = if digits.len() > cut {
            digits.split_at(digits.len() - cut)
        } else {
            ("0", digits)
        };
        if dropped.chars().any(|c| c != '0') {
            return Err("has more than 6 decimal places".into());
        }
        keep.parse::<i128>()
            .map_err(|_| "is not a decimal number".to_owned())?
    };
    if micros > i128::from(max_usd) * i128::from(MICROS_PER_USD) {
        return Err(format!("must be at most {max_usd} USD"));
    }
    Ok(micros as i64)
}

/// `micros` rounded half away from zero to `decimals` places, as decimal text.
pub fn format_usd(micros: i64, decimals: u32) -> String {
    let unit = 10i64.pow(6 - decimals);
    let rounded = (micros.abs() + unit / 2) / unit; // in units of 10^-decimals USD
    let sign = if micros < 0 && rounded != 0 { "-" } else { "" };
    let scale = 10i64.pow(decimals);
    if decimals == 0 {
        format!("{sign}{rounded}")
    } else {
        format!(
            "{sign}{}.{:0width$}",
            rounded / scale,
            rounded % scale,
            width = decimals as usize
        )
    }
}

/// Serializes as a JSON number with 4 decimals (`0.1000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usd4(pub i64);
/// Serializes as a JSON number with 2 decimals (`125.00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usd2(pub i64);

fn raw_number<S: Serializer>(text: String, s: S) -> Result<S::Ok, S::Error> {
    let raw = serde_json::value::RawValue::from_string(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

impl Serialize for Usd4 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        raw_number(format_usd(self.0, 4), s)
    }
}

impl Serialize for Usd2 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        raw_number(format_usd(self.0, 2), s)
    }
}

/// A ratio as a JSON number with `decimals` places (percentages, averages, rates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fixed(pub f64, pub u32);

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let value = if self.0.is_finite() { self.0 } else { 0.0 };
        raw_number(format!("{:.*}", self.1 as usize, value), s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> serde_json::Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn usd_numbers_become_exact_micros() {
        assert_eq!(parse_usd(&n("0.0150"), 1_000_000), Ok(15_000));
        assert_eq!(parse_usd(&n("125"), 1_000_000), Ok(125_000_000));
        assert_eq!(parse_usd(&n("0.000001"), 1_000_000), Ok(1));
        assert_eq!(parse_usd(&n("1.5e-3"), 1_000_000), Ok(1_500));
        assert_eq!(parse_usd(&n("2E2"), 1_000_000), Ok(200_000_000));
        assert_eq!(parse_usd(&n("0"), 1_000_000), Ok(0));
    }

    #[test]
    fn sub_micro_negative_and_huge_amounts_are_refused() {
        assert!(parse_usd(&n("0.0000001"), 1_000_000).is_err());
        assert!(parse_usd(&n("-1"), 1_000_000).is_err());
        assert!(parse_usd(&n("1000001"), 1_000_000).is_err());
        assert!(parse_usd(&n("1e300"), 1_000_000).is_err());
    }

    #[test]
    fn money_renders_with_the_contracts_decimals() {
        assert_eq!(serde_json::to_string(&Usd4(100_000)).unwrap(), "0.1000");
        assert_eq!(serde_json::to_string(&Usd2(125_000_000)).unwrap(), "125.00");
        assert_eq!(format_usd(15_000, 2), "0.02");
        assert_eq!(format_usd(14_999, 2), "0.01");
        assert_eq!(format_usd(-15_000, 2), "-0.02");
        assert_eq!(format_usd(49, 4), "0.0000");
        assert_eq!(format_usd(50, 4), "0.0001");
    }
}

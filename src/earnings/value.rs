//! Sample values read exactly: Prometheus (JSON API and exposition text) writes every value as
//! a decimal float string ("40000", "4.3", "1e+21", "NaN"). Money must never pass through `f64`,
//! so these strings are parsed into an exact decimal ([`Decimal`]: an integer mantissa and a
//! count of fractional digits) and only then turned into atomic units.
//!
//! The revenue rules record whole numbers, except for a window with a counter reset, where they
//! fall back to `increase()`: it extrapolates to the edges of the window, so count and amount are
//! then fractional even though every charge is a whole number of atomic units.
//! [`Charged::from_window`] explains how obol turns them back into whole numbers.

use alloy_primitives::U256;

/// Fractional digits kept from a parsed value. Anything smaller than 1e-40 of an atomic unit
/// is dropped; the value is then no longer exact, which [`Decimal::truncated`] records.
const MAX_SCALE: u32 = 40;

/// Largest integer an `f64` holds exactly (2^53). A money value from Prometheus above this is
/// an integer only because the float ran out of digits.
const F64_EXACT_INT: u64 = 1 << 53;

/// Why a sample value cannot be used as a count or an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("sample value {0:?} is not a number")]
    Invalid(String),
    #[error("sample value {0:?} is not finite")]
    NotFinite(String),
    #[error("sample value {0:?} is negative")]
    Negative(String),
    #[error("sample value {0:?} is too large")]
    TooLarge(String),
}

/// A non-negative decimal number held exactly: `mantissa / 10^scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    mantissa: U256,
    scale: u32,
    /// Digits beyond [`MAX_SCALE`] were dropped.
    truncated: bool,
}

fn pow10(n: u32) -> Option<U256> {
    U256::from(10u8).checked_pow(U256::from(n))
}

impl Decimal {
    /// Parses a float string as Prometheus writes it: digits with an optional fraction and an
    /// optional exponent (`"4.3"`, `"1e+21"`, `"2.5E-3"`, `"+7"`). `NaN`, `±Inf` and negative
    /// values are refused (counts and amounts cannot be negative; `-0` is 0).
    pub fn parse(s: &str) -> Result<Decimal, ValueError> {
        let t = s.trim();
        let invalid = || ValueError::Invalid(s.chars().take(40).collect());
        let lower = t.to_ascii_lowercase();
        let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
        if matches!(unsigned, "nan" | "inf" | "infinity") {
            return Err(ValueError::NotFinite(t.to_string()));
        }
        let negative = lower.starts_with('-');
        let (number, exponent) = match unsigned.split_once('e') {
            Some((n, e)) => {
                let e: i64 = e.parse().map_err(|_| invalid())?;
                (n, e)
            }
            None => (unsigned, 0),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        // digits = int ++ frac, value = digits * 10^(exponent - frac.len()).
        let digits: String = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        let mut shift = exponent - frac.len() as i64;
        let too_large = || ValueError::TooLarge(t.to_string());
        if digits.is_empty() {
            return Ok(Decimal::zero());
        }
        if negative {
            return Err(ValueError::Negative(t.to_string()));
        }
        // Drop digits that would need a scale beyond MAX_SCALE.
        let mut kept = digits;
        let mut truncated = false;
        if shift < -(MAX_SCALE as i64) {
            let drop = (-(MAX_SCALE as i64) - shift) as usize;
            if drop >= kept.len() {
                return Ok(Decimal {
                    mantissa: U256::ZERO,
                    scale: 0,
                    truncated: true,
                });
            }
            let (head, tail) = kept.split_at(kept.len() - drop);
            truncated = tail.bytes().any(|b| b != b'0');
            kept = head;
            shift += drop as i64;
        }
        if kept.len() > 78 {
            return Err(too_large());
        }
        let mut mantissa = U256::from_str_radix(kept, 10).map_err(|_| too_large())?;
        let scale = if shift >= 0 {
            let factor = u32::try_from(shift)
                .ok()
                .and_then(pow10)
                .ok_or_else(too_large)?;
            mantissa = mantissa.checked_mul(factor).ok_or_else(too_large)?;
            0
        } else {
            (-shift) as u32
        };
        Ok(Decimal {
            mantissa,
            scale,
            truncated,
        }
        .normalized())
    }

    pub fn zero() -> Decimal {
        Decimal {
            mantissa: U256::ZERO,
            scale: 0,
            truncated: false,
        }
    }

    /// An exact integer.
    pub fn from_int(v: U256) -> Decimal {
        Decimal {
            mantissa: v,
            scale: 0,
            truncated: false,
        }
    }

    /// Strips trailing fractional zeros (`4.50` -> `4.5`, `3.0` -> `3`).
    fn normalized(mut self) -> Decimal {
        let ten = U256::from(10u8);
        while self.scale > 0 && (self.mantissa % ten).is_zero() {
            self.mantissa /= ten;
            self.scale -= 1;
        }
        self
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa.is_zero()
    }

    /// Whether digits below 1e-40 were dropped while parsing.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The value when it is a whole number (and nothing was dropped).
    pub fn to_integer(&self) -> Option<U256> {
        (self.scale == 0 && !self.truncated).then_some(self.mantissa)
    }

    /// The nearest whole number, halves rounded up.
    pub fn round_half_up(&self) -> U256 {
        let den = pow10(self.scale).expect("scale <= MAX_SCALE");
        ratio_round_half_up(self.mantissa, den).0
    }

    /// The largest whole number not above the value, or the nearest one when the value is
    /// within float noise (a relative 1e-12) of it: `3.46` is 3, `2.9999999999999996` is 3.
    pub fn floor_within_noise(&self) -> U256 {
        let den = pow10(self.scale).expect("scale <= MAX_SCALE");
        let (nearest, distance) = ratio_round_half_up(self.mantissa, den);
        // distance/den <= 1e-12 * max(nearest, 1)
        let close = distance
            .checked_mul(U256::from(1_000_000_000_000u64))
            .zip(den.checked_mul(nearest.max(U256::from(1u8))))
            .is_some_and(|(d, t)| d <= t);
        if close { nearest } else { self.mantissa / den }
    }

    /// `self * mul / div`, rounded half up, and whether the exact quotient is a whole number
    /// up to a relative 1e-12 (the float noise of the arithmetic Prometheus did to produce the
    /// inputs). `None` when `div` is zero or the numbers overflow 256 bits.
    pub fn scaled_round(&self, mul: U256, div: &Decimal) -> Option<(U256, bool)> {
        if div.is_zero() {
            return None;
        }
        // (ma / 10^sa) * mul / (md / 10^sd) = ma * mul * 10^sd / (md * 10^sa)
        let num = self
            .mantissa
            .checked_mul(mul)?
            .checked_mul(pow10(div.scale)?)?;
        let den = div.mantissa.checked_mul(pow10(self.scale)?)?;
        let (rounded, distance_num) = ratio_round_half_up(num, den);
        // whole when distance/den <= 1e-12 * max(rounded, 1)
        let tolerance = den.checked_mul(rounded.max(U256::from(1u8)))?;
        let whole = distance_num.checked_mul(U256::from(1_000_000_000_000u64))? <= tolerance;
        Some((rounded, whole && !self.truncated && !div.truncated))
    }
}

/// `num / den` rounded half up, and the distance to that integer as a numerator over `den`.
fn ratio_round_half_up(num: U256, den: U256) -> (U256, U256) {
    let q = num / den;
    let r = num % den;
    // r >= den - r  <=>  the fraction is at least one half (no overflow: r < den).
    if r >= den - r {
        (q + U256::from(1u8), den - r)
    } else {
        (q, r)
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

/// A whole count or amount, and whether it is an estimate rather than an exact reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub value: U256,
    /// `true` when the value could not be read exactly (see [`Charged::from_window`]).
    pub approximate: bool,
}

/// The charged requests and the charged amount (atomic units) of one offer and chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    pub requests: Estimate,
    pub amount: Estimate,
}

impl Charged {
    /// Exact lifetime counters as a verifier exposes them (`--scrape`): both must be whole.
    /// A fractional amount is rounded half up and marked approximate, never silently.
    pub fn from_counters(requests: &Decimal, amount: &Decimal) -> Charged {
        let whole = |d: &Decimal| match d.to_integer() {
            Some(v) => Estimate {
                value: v,
                approximate: false,
            },
            None => Estimate {
                value: d.round_half_up(),
                approximate: true,
            },
        };
        Charged {
            requests: whole(requests),
            amount: whole(amount),
        }
    }

    /// The values of `x402:revenue:<w>_by_offer_chain` (`requests`) and
    /// `x402:revenue_amount:<w>_by_offer_chain` (`amount`) for one offer and chain.
    ///
    /// Whole numbers (the rules' usual max - min growth) are taken as they are. Fractions come
    /// from the rules' `increase()` fallback for windows with a counter reset: it scales the
    /// growth it saw by (window covered) / (time between the first and last sample), a factor
    /// of at least 1 that Prometheus applies alike to both counters of a series (they are
    /// scraped together). obol removes it: the charged requests `n` are the largest whole
    /// number not above the recorded count (the factor only ever adds; a count within float
    /// noise of a whole number is that number), and the amount is `amount * n / requests` in
    /// exact rational arithmetic on the decimal strings, rounded half up to the atomic unit.
    /// That is exact when the factor was shared, which shows as a whole number; otherwise
    /// (several verifier replicas summed, a price change right at the window's start) the
    /// amount is marked approximate. Values above 2^53 are marked approximate as well: an `f64`
    /// has no more integer digits.
    pub fn from_window(requests: &Decimal, amount: &Decimal) -> Charged {
        let big = |v: U256| v > U256::from(F64_EXACT_INT);
        let n = requests.floor_within_noise();
        let requests_est = Estimate {
            value: n,
            // Less than one request recorded but not zero: there is nothing to scale by.
            approximate: big(n) || (n.is_zero() && !requests.is_zero()),
        };
        let amount_est = match (requests.to_integer(), amount.to_integer()) {
            (Some(_), Some(a)) => Estimate {
                value: a,
                approximate: big(a),
            },
            _ if n.is_zero() => Estimate {
                value: amount.round_half_up(),
                approximate: !amount.is_zero(),
            },
            _ => match amount.scaled_round(n, requests) {
                Some((a, whole)) => Estimate {
                    value: a,
                    approximate: !whole || big(a),
                },
                None => Estimate {
                    value: amount.round_half_up(),
                    approximate: true,
                },
            },
        };
        Charged {
            requests: requests_est,
            amount: amount_est,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    fn u(v: u64) -> U256 {
        U256::from(v)
    }

    #[test]
    fn parses_prometheus_float_strings_exactly() {
        assert_eq!(d("40000").to_integer(), Some(u(40000)));
        assert_eq!(d("40000.0").to_integer(), Some(u(40000)));
        assert_eq!(d("+7").to_integer(), Some(u(7)));
        assert_eq!(d("-0").to_integer(), Some(u(0)));
        assert_eq!(d("1e+21").to_integer(), Some(U256::from(10u8).pow(u(21))));
        assert_eq!(d("4.2E3").to_integer(), Some(u(4200)));
        assert_eq!(d("2.5e-1").to_string(), "0.25");
        assert_eq!(d("4.3").to_string(), "4.3");
        assert_eq!(d("4.3").to_integer(), None);
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("0.000001").to_string(), "0.000001");
        // A value as Prometheus writes a huge counter: exact integer digits.
        assert_eq!(
            d("18446744073709551615").to_integer(),
            Some(U256::from(u64::MAX))
        );
    }

    #[test]
    fn refuses_what_is_not_a_count() {
        for (s, want) in [
            ("NaN", ValueError::NotFinite("NaN".into())),
            ("+Inf", ValueError::NotFinite("+Inf".into())),
            ("-Inf", ValueError::NotFinite("-Inf".into())),
            ("-1", ValueError::Negative("-1".into())),
            ("-0.5", ValueError::Negative("-0.5".into())),
            ("", ValueError::Invalid("".into())),
            (".", ValueError::Invalid(".".into())),
            ("1,5", ValueError::Invalid("1,5".into())),
            ("0x10", ValueError::Invalid("0x10".into())),
            ("1e", ValueError::Invalid("1e".into())),
            ("1e999", ValueError::TooLarge("1e999".into())),
        ] {
            assert_eq!(Decimal::parse(s), Err(want), "{s}");
        }
    }

    #[test]
    fn tiny_values_are_truncated_and_flagged() {
        let v = d("5e-324");
        assert!(v.is_zero());
        assert!(v.truncated());
        assert_eq!(v.to_integer(), None);
        let v = d("1.5e-45");
        assert!(v.truncated());
    }

    #[test]
    fn rounds_half_up() {
        assert_eq!(d("4.5").round_half_up(), u(5));
        assert_eq!(d("4.49999").round_half_up(), u(4));
        assert_eq!(d("0.5").round_half_up(), u(1));
        assert_eq!(d("0.4").round_half_up(), u(0));
        assert_eq!(d("7").round_half_up(), u(7));
    }

    #[test]
    fn exact_counters_stay_exact() {
        let c = Charged::from_counters(&d("4"), &d("40000"));
        assert_eq!(c.requests.value, u(4));
        assert_eq!(c.amount.value, u(40000));
        assert!(!c.requests.approximate && !c.amount.approximate);
        // Beyond 2^53 a scraped integer is still exact: it never was a float.
        let c = Charged::from_counters(&d("1"), &d("18446744073709551615"));
        assert_eq!(c.amount.value, U256::from(u64::MAX));
        assert!(!c.amount.approximate);
        // A fractional amount is never rounded silently.
        let c = Charged::from_counters(&d("1"), &d("10000.5"));
        assert_eq!(c.amount.value, u(10001));
        assert!(c.amount.approximate);
    }

    #[test]
    fn floors_within_noise() {
        assert_eq!(d("3.46").floor_within_noise(), u(3));
        assert_eq!(d("3.9").floor_within_noise(), u(3));
        assert_eq!(d("2.9999999999999996").floor_within_noise(), u(3));
        assert_eq!(d("3.0000000000000004").floor_within_noise(), u(3));
        assert_eq!(d("0.4").floor_within_noise(), u(0));
        assert_eq!(d("7").floor_within_noise(), u(7));
    }

    #[test]
    fn window_values_lose_the_extrapolation() {
        // What a real Prometheus recorded for 3 charges of 0.01 USDC (factor 1.1547).
        let c = Charged::from_window(&d("3.4640000000000004"), &d("34640"));
        assert_eq!((c.requests.value, c.amount.value), (u(3), u(30000)));
        assert!(!c.requests.approximate && !c.amount.approximate, "{c:?}");
        // 4 charges of 0.01 USDC, extrapolated by 1.075.
        let c = Charged::from_window(&d("4.3"), &d("43000"));
        assert_eq!(c.requests.value, u(4));
        assert_eq!(c.amount.value, u(40000));
        assert!(!c.amount.approximate, "{c:?}");
        // A factor large enough to push the count past the next whole number still floors.
        let c = Charged::from_window(&d("3.9"), &d("39000"));
        assert_eq!((c.requests.value, c.amount.value), (u(3), u(30000)));
        assert!(!c.amount.approximate, "{c:?}");
        // Float noise in the inputs still gives the whole number.
        let c = Charged::from_window(&d("3.0000000000000004"), &d("30000.000000000004"));
        assert_eq!((c.requests.value, c.amount.value), (u(3), u(30000)));
        assert!(!c.amount.approximate);
        // Mixed prices, one factor: 2 x 0.01 + 1 x 0.02 = 0.04 USDC, extrapolated by 1.1.
        let c = Charged::from_window(&d("3.3000000000000003"), &d("44000"));
        assert_eq!((c.requests.value, c.amount.value), (u(3), u(40000)));
        assert!(!c.amount.approximate);
        // The same by 1.4: 4.2 floors to 4 requests, which no longer fits the amount. Both
        // are then off, and the amount says so.
        let c = Charged::from_window(&d("4.2"), &d("56000"));
        assert_eq!((c.requests.value, c.amount.value), (u(4), u(53333)));
        assert!(c.amount.approximate);
        // Exact inputs pass through.
        let c = Charged::from_window(&d("6"), &d("60000"));
        assert_eq!((c.requests.value, c.amount.value), (u(6), u(60000)));
        assert!(!c.amount.approximate);
    }

    #[test]
    fn window_values_that_cannot_be_normalised_are_flagged() {
        // Less than half a request: nothing to normalise against.
        let c = Charged::from_window(&d("0.25"), &d("2500"));
        assert_eq!(c.requests.value, u(0));
        assert!(c.requests.approximate);
        assert_eq!(c.amount.value, u(2500));
        assert!(c.amount.approximate);
        // Zero stays an exact zero.
        let c = Charged::from_window(&d("0"), &d("0"));
        assert!(!c.requests.approximate && !c.amount.approximate);
        // Two replicas summed with different factors.
        let c = Charged::from_window(&d("5.5"), &d("57500.7"));
        assert_eq!(c.requests.value, u(5));
        assert!(c.amount.approximate);
        // Above 2^53 the float has no integer digits left.
        let c = Charged::from_window(&d("1"), &d("9007199254740993"));
        assert!(c.amount.approximate);
    }
}

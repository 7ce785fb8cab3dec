//! Decimal strings <-> atomic token units.
//!
//! Money is an integer count of the token's smallest unit (`U256`) everywhere; decimal strings
//! exist only at the edges (flags, config files, tables). No floating point is involved.

use alloy_primitives::U256;

/// The longest decimal string a `U256` can need (2^256 - 1 has 78 digits).
const MAX_U256_DIGITS: usize = 78;

/// How much of the offending input an error message repeats.
const MAX_ECHO: usize = 80;

/// Why an amount string was refused. Amounts are not secrets, so the input is echoed
/// (cut to 80 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("empty amount")]
    Empty,
    #[error("invalid amount {given:?}: expected a plain decimal number such as 0.01")]
    Invalid { given: String },
    #[error("amount {given:?} has more than {decimals} decimal places")]
    TooManyDecimals { given: String, decimals: u8 },
    #[error("amount {given:?} is too large")]
    Overflow { given: String },
}

/// What to do with fractional digits beyond the token's decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Refuse them (trailing zeros excepted): the amount must be representable exactly.
    Exact,
    /// Round half up on the first dropped digit (the Go stack's `decimalToAtomic`).
    HalfUp,
}

fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// Appends ASCII decimal digits to `acc` (acc * 10 + d for each), `None` on overflow.
fn push_digits(mut acc: U256, digits: &[u8]) -> Option<U256> {
    let ten = U256::from(10u8);
    for d in digits {
        acc = acc
            .checked_mul(ten)?
            .checked_add(U256::from(d.wrapping_sub(b'0')))?;
    }
    Some(acc)
}

/// Parses a decimal amount such as `"0.01"` into atomic units of a token with `decimals`
/// decimals (`"0.01"` at 6 decimals is `10000`).
///
/// Accepts `"1"`, `"0.01"`, `".5"`, `"1."`, surrounded by optional whitespace. Refuses signs,
/// exponents, hex, separators, non-ASCII digits, `""` and `"."`.
pub fn parse_decimal(s: &str, decimals: u8, rounding: Rounding) -> Result<U256, AmountError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(AmountError::Empty);
    }
    let invalid = || AmountError::Invalid { given: echo(t) };
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i.as_bytes(), f.as_bytes()),
        None => (t.as_bytes(), &[][..]),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(invalid());
    }
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let places = usize::from(decimals);
    let overflow = || AmountError::Overflow { given: echo(t) };

    // Split the fraction into the kept digits and the dropped ones.
    let (kept, dropped) = if frac.len() > places {
        frac.split_at(places)
    } else {
        (frac, &[][..])
    };
    let mut round_up = false;
    if !dropped.is_empty() {
        match rounding {
            Rounding::Exact => {
                if dropped.iter().any(|d| *d != b'0') {
                    return Err(AmountError::TooManyDecimals {
                        given: echo(t),
                        decimals,
                    });
                }
            }
            Rounding::HalfUp => round_up = dropped.first().is_some_and(|d| *d >= b'5'),
        }
    }

    let mut value = push_digits(U256::ZERO, int).ok_or_else(overflow)?;
    value = push_digits(value, kept).ok_or_else(overflow)?;
    let ten = U256::from(10u8);
    for _ in kept.len()..places {
        value = value.checked_mul(ten).ok_or_else(overflow)?;
    }
    if round_up {
        value = value.checked_add(U256::from(1u8)).ok_or_else(overflow)?;
    }
    Ok(value)
}

/// Formats atomic units as an exact decimal string: `10000` at 6 decimals is `"0.01"`,
/// `1_000_000` is `"1"`, `0` is `"0"`.
pub fn format_atomic(v: U256, decimals: u8) -> String {
    let digits = v.to_string();
    let places = usize::from(decimals);
    if places == 0 {
        return digits;
    }
    let padded = if digits.len() <= places {
        format!("{}{}", "0".repeat(places + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - places);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// Parses an integer amount as it appears on the wire (`"10000"`): ASCII digits only, no sign,
/// no whitespace, 1 to 78 digits, within `U256`.
pub fn parse_atomic(s: &str) -> Result<U256, AmountError> {
    if s.is_empty() {
        return Err(AmountError::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::Invalid { given: echo(s) });
    }
    if s.len() > MAX_U256_DIGITS {
        return Err(AmountError::Overflow { given: echo(s) });
    }
    push_digits(U256::ZERO, s.as_bytes()).ok_or_else(|| AmountError::Overflow { given: echo(s) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(v: u64) -> U256 {
        U256::from(v)
    }

    #[test]
    fn parses_plain_decimals() {
        let cases = [
            ("1", 1_000_000),
            ("0.01", 10_000),
            (".5", 500_000),
            ("1.", 1_000_000),
            ("  0.001 \n", 1_000),
            ("0", 0),
            ("000.000001", 1),
            ("1.234567", 1_234_567),
            ("0.0100000", 10_000),
        ];
        for (s, want) in cases {
            assert_eq!(parse_decimal(s, 6, Rounding::Exact), Ok(u(want)), "{s}");
        }
        assert_eq!(parse_decimal("42", 0, Rounding::Exact), Ok(u(42)));
        assert_eq!(parse_decimal("42.0", 0, Rounding::Exact), Ok(u(42)));
    }

    #[test]
    fn exact_refuses_extra_places() {
        assert_eq!(
            parse_decimal("0.0000001", 6, Rounding::Exact),
            Err(AmountError::TooManyDecimals {
                given: "0.0000001".into(),
                decimals: 6
            })
        );
        assert!(matches!(
            parse_decimal("1.5", 0, Rounding::Exact),
            Err(AmountError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn half_up_rounds() {
        assert_eq!(parse_decimal("0.0000005", 6, Rounding::HalfUp), Ok(u(1)));
        assert_eq!(parse_decimal("0.0000004999", 6, Rounding::HalfUp), Ok(u(0)));
        assert_eq!(
            parse_decimal("1.2345675", 6, Rounding::HalfUp),
            Ok(u(1_234_568))
        );
        assert_eq!(parse_decimal("0.001", 6, Rounding::HalfUp), Ok(u(1_000)));
        assert_eq!(parse_decimal("2.5", 0, Rounding::HalfUp), Ok(u(3)));
    }

    #[test]
    fn rejects_bad_syntax() {
        for s in [
            "-1", "+1", "1e3", "0x10", "1,5", ".", "1.2.3", "1 000", "abc", "١", "1.٥", " . ",
        ] {
            assert!(
                matches!(
                    parse_decimal(s, 6, Rounding::Exact),
                    Err(AmountError::Invalid { .. })
                ),
                "{s:?}"
            );
        }
        assert_eq!(
            parse_decimal("", 6, Rounding::Exact),
            Err(AmountError::Empty)
        );
        assert_eq!(
            parse_decimal("   ", 6, Rounding::HalfUp),
            Err(AmountError::Empty)
        );
    }

    #[test]
    fn overflow_is_an_error() {
        let max = U256::MAX.to_string();
        assert_eq!(parse_decimal(&max, 0, Rounding::Exact), Ok(U256::MAX));
        assert!(matches!(
            parse_decimal(&max, 1, Rounding::Exact),
            Err(AmountError::Overflow { .. })
        ));
        assert!(matches!(
            parse_decimal("1", 80, Rounding::Exact),
            Err(AmountError::Overflow { .. })
        ));
        assert_eq!(parse_decimal("0", 255, Rounding::Exact), Ok(U256::ZERO));
        let rounding_overflow = format!("{max}.9");
        assert!(matches!(
            parse_decimal(&rounding_overflow, 0, Rounding::HalfUp),
            Err(AmountError::Overflow { .. })
        ));
    }

    #[test]
    fn error_echo_is_bounded() {
        let long = "x".repeat(10_000);
        match parse_decimal(&long, 6, Rounding::Exact) {
            Err(AmountError::Invalid { given }) => assert_eq!(given.len(), 80),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn formats_exactly() {
        assert_eq!(format_atomic(u(10_000), 6), "0.01");
        assert_eq!(format_atomic(u(0), 6), "0");
        assert_eq!(format_atomic(u(1_000_000), 6), "1");
        assert_eq!(format_atomic(u(1), 6), "0.000001");
        assert_eq!(format_atomic(u(1_234_567), 6), "1.234567");
        assert_eq!(format_atomic(u(120_000_000), 6), "120");
        assert_eq!(format_atomic(u(42), 0), "42");
        assert_eq!(
            format_atomic(u(1_500_000_000_000_000_000), 18),
            "1.5".to_string()
        );
        assert_eq!(format_atomic(U256::MAX, 0), U256::MAX.to_string());
    }

    #[test]
    fn format_parse_round_trip() {
        for v in [0u64, 1, 9, 10, 999_999, 1_000_001, 123_456_789_012] {
            for d in [0u8, 1, 6, 18] {
                let s = format_atomic(u(v), d);
                assert_eq!(parse_decimal(&s, d, Rounding::Exact), Ok(u(v)), "{v}@{d}");
            }
        }
    }

    #[test]
    fn parses_wire_integers() {
        assert_eq!(parse_atomic("10000"), Ok(u(10_000)));
        assert_eq!(parse_atomic("0"), Ok(U256::ZERO));
        assert_eq!(parse_atomic(&U256::MAX.to_string()), Ok(U256::MAX));
        assert_eq!(parse_atomic(""), Err(AmountError::Empty));
        for s in ["-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3", "١"] {
            assert!(
                matches!(parse_atomic(s), Err(AmountError::Invalid { .. })),
                "{s:?}"
            );
        }
        // 2^256 has 78 digits but overflows; 79 digits is refused before any arithmetic.
        let two_256 =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(matches!(
            parse_atomic(two_256),
            Err(AmountError::Overflow { .. })
        ));
        assert!(matches!(
            parse_atomic(&"1".repeat(79)),
            Err(AmountError::Overflow { .. })
        ));
    }
}

//! The x402 header encoding: standard base64 (with padding) of compact UTF-8 JSON.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// v2, server -> client: the payment requirements of a 402.
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// v2, client -> server: the signed payment.
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// v2, server -> client: the settlement receipt.
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// v1, client -> server: the signed payment.
pub const X_PAYMENT: &str = "X-PAYMENT";
/// v1, server -> client: the settlement receipt.
pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";

/// The largest header value (after trimming) that [`decode_header`] looks at.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Encoding: standard alphabet, always padded.
const ENCODE: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Decoding: standard alphabet, padding optional (some clients strip it).
const DECODE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a header (or a 402 body) could not be read. Never contains the input itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("header value too large ({len} bytes, limit {MAX_HEADER_BYTES})")]
    TooLarge { len: usize },
    #[error("header value is not valid base64")]
    Base64,
    #[error("decoded header value is not valid UTF-8")]
    Utf8,
    #[error("invalid x402 JSON: {0}")]
    Json(String),
    #[error("unsupported x402Version {0}")]
    UnsupportedVersion(u64),
    #[error("missing {0}")]
    Missing(&'static str),
}

impl DecodeError {
    /// Wraps a serde_json error, with every quoted string value it quotes replaced by `"…"`
    /// (serde repeats offending values, e.g. `invalid type: string "0x…", expected u64`,
    /// and a value can be a signature). Field names (in backticks) and positions stay.
    pub fn json(err: &serde_json::Error) -> Self {
        DecodeError::Json(redact_quoted(&err.to_string()))
    }
}

/// Replaces the content of every `"..."` (with `\"` escapes) by `…`.
pub(crate) fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        out.push('…');
        let mut escaped = false;
        for c in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                out.push('"');
                break;
            }
        }
    }
    out
}

/// Encodes `value` as compact JSON in standard, padded base64.
pub fn encode_header<T: Serialize>(value: &T) -> String {
    // Serialising our own wire types (strings, integers, JSON values) cannot fail; should a
    // foreign type refuse, an empty JSON object is the harmless result.
    let json = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    ENCODE.encode(json)
}

/// Decodes a header value produced by [`encode_header`] (or any x402 implementation):
/// trims ASCII whitespace, refuses more than [`MAX_HEADER_BYTES`], base64 (standard alphabet,
/// padding optional), UTF-8, then JSON into `T`.
pub fn decode_header<T: DeserializeOwned>(value: &str) -> Result<T, DecodeError> {
    let bytes = decode_header_bytes(value)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| DecodeError::Utf8)?;
    serde_json::from_str(text).map_err(|e| DecodeError::json(&e))
}

/// The base64 step of [`decode_header`]: the raw JSON bytes.
pub fn decode_header_bytes(value: &str) -> Result<Vec<u8>, DecodeError> {
    let trimmed = value.trim_ascii();
    if trimmed.len() > MAX_HEADER_BYTES {
        return Err(DecodeError::TooLarge { len: trimmed.len() });
    }
    DECODE.decode(trimmed).map_err(|_| DecodeError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn round_trip_is_padded_standard_base64() {
        let v = json!({"a": "b?>>", "x402Version": 2});
        let h = encode_header(&v);
        // compact JSON, standard alphabet, padding present
        let raw = ENCODE.decode(&h).unwrap();
        assert_eq!(raw, br#"{"a":"b?>>","x402Version":2}"#);
        assert_eq!(h, "eyJhIjoiYj8+PiIsIng0MDJWZXJzaW9uIjoyfQ==");
        assert!(h.ends_with('='));
        let back: Value = decode_header(&h).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn decodes_the_spec_example() {
        // x402 v1 X-PAYMENT-RESPONSE style value, padded
        let h =
            ENCODE.encode(br#"{"success":true,"transaction":"0xabc","network":"base-sepolia"}"#);
        let v: Value = decode_header(&format!("  {h}\t")).unwrap();
        assert_eq!(v["network"], "base-sepolia");
    }

    #[test]
    fn accepts_unpadded_input() {
        let h = encode_header(&json!({"k": 1}));
        let unpadded = h.trim_end_matches('=');
        assert_ne!(unpadded, h);
        let v: Value = decode_header(unpadded).unwrap();
        assert_eq!(v, json!({"k": 1}));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode_header::<Value>("not base64!"),
            Err(DecodeError::Base64)
        );
        // URL-safe alphabet is not accepted
        assert_eq!(decode_header::<Value>("-_-_"), Err(DecodeError::Base64));
        let bad_utf8 = ENCODE.encode([0xff, 0xfe, 0xfd]);
        assert_eq!(decode_header::<Value>(&bad_utf8), Err(DecodeError::Utf8));
        let not_json = ENCODE.encode("hello");
        assert!(matches!(
            decode_header::<Value>(&not_json),
            Err(DecodeError::Json(_))
        ));
        let big = "A".repeat(MAX_HEADER_BYTES + 4);
        assert_eq!(
            decode_header::<Value>(&big),
            Err(DecodeError::TooLarge {
                len: MAX_HEADER_BYTES + 4
            })
        );
        assert!(matches!(
            decode_header::<Value>(""),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn json_errors_do_not_repeat_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: u64,
        }
        let secret = "0xdeadbeefcafe";
        let h = ENCODE.encode(format!(r#"{{"n":"{secret}"}}"#));
        let err = decode_header::<T>(&h).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("deadbeef"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
        let missing = decode_header::<T>(&ENCODE.encode("{}")).unwrap_err();
        assert!(missing.to_string().contains("missing field `n`"));
    }

    #[test]
    fn redaction_handles_escapes() {
        assert_eq!(
            redact_quoted(r#"string "a\"b" expected"#),
            r#"string "…" expected"#
        );
        assert_eq!(redact_quoted(r#"open "abc"#), r#"open "…"#);
    }
}

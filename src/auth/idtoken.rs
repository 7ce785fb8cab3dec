//! ID token checks: the JWS signature against the issuer's JWKS (RS256 or ES256), then the
//! claims `iss`, `aud` (and `azp` with several audiences), `exp` and `iat` with a small leeway,
//! and `nonce` on login.
//!
//! Errors describe what is wrong, never the token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 60;

/// The claims obol reads from an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub azp: Option<String>,
    pub exp: i64,
    pub iat: Option<i64>,
    #[serde(skip)]
    pub nonce: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
}

impl Claims {
    /// `email`, else `sub`: who the token is for, for people.
    pub fn who(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.sub)
    }
}

#[derive(Debug, Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    azp: Option<String>,
    exp: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// A JSON Web Key Set (the issuer's `jwks_uri`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One key: RSA (`n`, `e`) or EC P-256 (`x`, `y`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed ({0})")]
    Malformed(&'static str),
    #[error("the ID token is signed with {0}, which obol does not accept (RS256, ES256)")]
    UnsupportedAlgorithm(String),
    #[error("no key in the issuer's JWKS matches the ID token (kid {kid})")]
    NoKey { kid: String },
    #[error("the ID token's signature does not verify against the issuer's keys")]
    BadSignature,
    #[error("the ID token was issued by {got}, not {expected}")]
    WrongIssuer { expected: String, got: String },
    #[error("the ID token is for another client (aud {got}), not {expected}")]
    WrongAudience { expected: String, got: String },
    #[error("the ID token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("the ID token claims to be issued in the future (iat {iat}, now {now})")]
    IssuedInFuture { iat: i64, now: i64 },
    #[error("the ID token's nonce does not match this login (replayed or mixed-up response)")]
    NonceMismatch,
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The issuer obol signed in to (Google's legacy `accounts.google.com` is accepted for it).
    pub issuer: &'a str,
    /// The OAuth client id: must be in `aud`.
    pub client_id: &'a str,
    /// On login, the nonce sent in the authorization request; `None` on refresh.
    pub nonce: Option<&'a str>,
    /// The current Unix time.
    pub now: i64,
}

/// Splits and decodes a JWS without checking it (for `status` display and scheduling only).
pub fn decode_unverified(token: &str) -> Result<Claims, IdTokenError> {
    let (_, payload, _, _) = split(token)?;
    parse_claims(&payload)
}

/// Verifies `token` against `jwks` and `expect`; returns its claims.
pub fn verify(token: &str, jwks: &Jwks, expect: &Expectations<'_>) -> Result<Claims, IdTokenError> {
    let (header, payload, signature, signed) = split(token)?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|_| IdTokenError::Malformed("header"))?;
    verify_signature(&header, signed.as_bytes(), &signature, jwks)?;
    let claims = parse_claims(&payload)?;
    check_claims(&claims, expect)?;
    Ok(claims)
}

/// The key ids the token's header names (so a caller can refetch the JWKS when the issuer
/// rotated its keys).
pub fn key_id(token: &str) -> Option<String> {
    let (header, _, _, _) = split(token).ok()?;
    serde_json::from_slice::<Header>(&header).ok()?.kid
}

/// A JWS in compact form, decoded: header, payload, signature, and the signed input.
type Parts<'a> = (Vec<u8>, Vec<u8>, Vec<u8>, &'a str);

/// header bytes, payload bytes, signature bytes, and the signed input `header.payload`.
fn split(token: &str) -> Result<Parts<'_>, IdTokenError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed("not three dot-separated parts"));
    };
    let b64 = |x: &str, what| {
        URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| IdTokenError::Malformed(what))
    };
    let header = b64(h, "header encoding")?;
    let payload = b64(p, "payload encoding")?;
    let sig = b64(s, "signature encoding")?;
    let signed = &token.trim()[..h.len() + 1 + p.len()];
    Ok((header, payload, sig, signed))
}

fn parse_claims(payload: &[u8]) -> Result<Claims, IdTokenError> {
    let raw: RawClaims =
        serde_json::from_slice(payload).map_err(|_| IdTokenError::Malformed("claims"))?;
    let aud = match raw.aud {
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(IdTokenError::Malformed("aud")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(IdTokenError::Malformed("no aud claim")),
    };
    let number = |n: Option<serde_json::Number>| {
        n.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
    };
    let email_verified = match raw.email_verified {
        Some(serde_json::Value::Bool(b)) => Some(b),
        // Some issuers write it as a string.
        Some(serde_json::Value::String(s)) => Some(s == "true"),
        _ => None,
    };
    Ok(Claims {
        iss: raw.iss.ok_or(IdTokenError::Malformed("no iss claim"))?,
        sub: raw.sub.ok_or(IdTokenError::Malformed("no sub claim"))?,
        aud,
        azp: raw.azp,
        exp: number(raw.exp).ok_or(IdTokenError::Malformed("no exp claim"))?,
        iat: number(raw.iat),
        nonce: raw.nonce,
        email: raw.email,
        email_verified,
        name: raw.name,
    })
}

fn verify_signature(
    header: &Header,
    signed: &[u8],
    sig: &[u8],
    jwks: &Jwks,
) -> Result<(), IdTokenError> {
    let kty = match header.alg.as_str() {
        "RS256" => "RSA",
        "ES256" => "EC",
        other => return Err(IdTokenError::UnsupportedAlgorithm(other.to_owned())),
    };
    let candidates: Vec<&Jwk> = jwks
        .keys
        .iter()
        .filter(|k| k.kty == kty)
        .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == header.alg))
        .filter(|k| match (&header.kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::NoKey {
            kid: header.kid.clone().unwrap_or_else(|| "none".into()),
        });
    }
    for key in candidates {
        let ok = match kty {
            "RSA" => verify_rs256(key, signed, sig),
            _ => verify_es256(key, signed, sig),
        };
        if ok {
            return Ok(());
        }
    }
    Err(IdTokenError::BadSignature)
}

fn verify_rs256(key: &Jwk, signed: &[u8], sig: &[u8]) -> bool {
    let (Some(n), Some(e)) = (&key.n, &key.e) else {
        return false;
    };
    let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
        return false;
    };
    RsaPublicKeyComponents { n, e }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, sig)
        .is_ok()
}

fn verify_es256(key: &Jwk, signed: &[u8], sig: &[u8]) -> bool {
    if key.crv.as_deref() != Some("P-256") {
        return false;
    }
    let (Some(x), Some(y)) = (&key.x, &key.y) else {
        return false;
    };
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(x), URL_SAFE_NO_PAD.decode(y)) else {
        return false;
    };
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(signed, sig)
        .is_ok()
}

fn check_claims(c: &Claims, expect: &Expectations<'_>) -> Result<(), IdTokenError> {
    let want = super::discovery::normalize_issuer(expect.issuer);
    let got = super::discovery::normalize_issuer(&c.iss);
    let google_legacy = super::is_google(&want) && got == "accounts.google.com";
    if got != want && !google_legacy {
        return Err(IdTokenError::WrongIssuer {
            expected: want,
            got: c.iss.clone(),
        });
    }
    let aud_ok = c.aud.iter().any(|a| a == expect.client_id)
        && (c.aud.len() == 1 || c.azp.as_deref().is_none_or(|azp| azp == expect.client_id));
    if !aud_ok {
        return Err(IdTokenError::WrongAudience {
            expected: expect.client_id.to_owned(),
            got: c.aud.join(","),
        });
    }
    if c.exp + LEEWAY_SECS <= expect.now {
        return Err(IdTokenError::Expired {
            exp: c.exp,
            now: expect.now,
        });
    }
    if let Some(iat) = c.iat
        && iat > expect.now + LEEWAY_SECS
    {
        return Err(IdTokenError::IssuedInFuture {
            iat,
            now: expect.now,
        });
    }
    if let Some(nonce) = expect.nonce {
        match &c.nonce {
            Some(got) if super::constant_time_eq(got, nonce) => {}
            _ => return Err(IdTokenError::NonceMismatch),
        }
    }
    Ok(())
}

/// Test helpers: sign tokens with a fixed RSA test key or a fresh P-256 key.
#[cfg(test)]
pub(crate) mod testkeys {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};

    /// A 2048-bit RSA key made for these tests only (PKCS#8 DER).
    const RSA_PKCS8: &[u8] = include_bytes!("testdata/test-rsa-2048.pk8");

    pub fn rsa() -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("test key")
    }

    pub fn rsa_jwk(kid: &str) -> Jwk {
        let key = rsa();
        let c: RsaPublicKeyComponents<Vec<u8>> = key.public().into();
        Jwk {
            kty: "RSA".into(),
            kid: Some(kid.into()),
            alg: Some("RS256".into()),
            use_: Some("sig".into()),
            n: Some(URL_SAFE_NO_PAD.encode(&c.n)),
            e: Some(URL_SAFE_NO_PAD.encode(&c.e)),
            ..Default::default()
        }
    }

    pub fn sign_rs256(kid: &str, claims: &serde_json::Value) -> String {
        let key = rsa();
        let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    pub fn es256(kid: &str, claims: &serde_json::Value) -> (String, Jwk) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("p256 key");
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("p256 key");
        let public = key.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some(kid.into()),
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&public[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&public[33..65])),
            ..Default::default()
        };
        let header = serde_json::json!({"alg": "ES256", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = key.sign(&rng, input.as_bytes()).expect("sign");
        (
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())),
            jwk,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testkeys::*;
    use super::*;
    use serde_json::json;

    const ISS: &str = "http://127.0.0.1:9400";
    const NOW: i64 = 1_800_000_000;

    fn claims() -> serde_json::Value {
        json!({"iss": ISS, "sub": "alice", "aud": "obol-cli", "exp": NOW + 3600, "iat": NOW,
               "nonce": "n-1", "email": "alice@example.test", "email_verified": true})
    }

    fn jwks() -> Jwks {
        Jwks {
            keys: vec![rsa_jwk("k1")],
        }
    }

    fn expect(nonce: Option<&'static str>) -> Expectations<'static> {
        Expectations {
            issuer: ISS,
            client_id: "obol-cli",
            nonce,
            now: NOW,
        }
    }

    #[test]
    fn a_good_rs256_token_verifies() {
        let t = sign_rs256("k1", &claims());
        let c = verify(&t, &jwks(), &expect(Some("n-1"))).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.who(), "alice@example.test");
        assert_eq!(c.exp, NOW + 3600);
        assert_eq!(decode_unverified(&t).unwrap(), c);
        assert_eq!(key_id(&t).as_deref(), Some("k1"));
    }

    #[test]
    fn a_good_es256_token_verifies() {
        let (t, jwk) = es256("ec1", &claims());
        let set = Jwks { keys: vec![jwk] };
        verify(&t, &set, &expect(None)).unwrap();
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let t = sign_rs256("k1", &claims());
        let parts: Vec<&str> = t.split('.').collect();
        let mut evil = claims();
        evil["sub"] = json!("mallory");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(evil.to_string()),
            parts[2]
        );
        let err = verify(&forged, &jwks(), &expect(None)).unwrap_err();
        assert_eq!(err, IdTokenError::BadSignature);
        // The message never quotes the token.
        assert!(!err.to_string().contains(parts[0]));
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let (t, _) = es256("k1", &claims());
        let mut foreign = jwks();
        foreign.keys.push(Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode([1u8; 32])),
            y: Some(URL_SAFE_NO_PAD.encode([2u8; 32])),
            ..Default::default()
        });
        assert_eq!(
            verify(&t, &foreign, &expect(None)).unwrap_err(),
            IdTokenError::BadSignature
        );
    }

    #[test]
    fn unknown_kid_and_alg_none_are_refused() {
        let t = sign_rs256("other", &claims());
        assert!(matches!(
            verify(&t, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::NoKey { .. }
        ));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        assert_eq!(
            verify(&none, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::UnsupportedAlgorithm("none".into())
        );
        let hs = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        assert!(matches!(
            verify(&hs, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::UnsupportedAlgorithm(_)
        ));
    }

    #[test]
    fn wrong_audience_is_refused() {
        let mut c = claims();
        c["aud"] = json!("someone-else");
        let t = sign_rs256("k1", &c);
        assert!(matches!(
            verify(&t, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::WrongAudience { .. }
        ));
        // Several audiences: azp must be us.
        c["aud"] = json!(["obol-cli", "other"]);
        c["azp"] = json!("other");
        let t = sign_rs256("k1", &c);
        assert!(matches!(
            verify(&t, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::WrongAudience { .. }
        ));
        c["azp"] = json!("obol-cli");
        let t = sign_rs256("k1", &c);
        verify(&t, &jwks(), &expect(None)).unwrap();
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let mut c = claims();
        c["exp"] = json!(NOW - LEEWAY_SECS - 1);
        let t = sign_rs256("k1", &c);
        assert!(matches!(
            verify(&t, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::Expired { .. }
        ));
        c["exp"] = json!(NOW - 10);
        let t = sign_rs256("k1", &c);
        verify(&t, &jwks(), &expect(None)).unwrap();
        c["exp"] = json!(NOW + 3600);
        c["iat"] = json!(NOW + 3600);
        let t = sign_rs256("k1", &c);
        assert!(matches!(
            verify(&t, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::IssuedInFuture { .. }
        ));
    }

    #[test]
    fn wrong_issuer_and_nonce_are_refused() {
        let mut c = claims();
        c["iss"] = json!("http://127.0.0.1:9999");
        let t = sign_rs256("k1", &c);
        assert!(matches!(
            verify(&t, &jwks(), &expect(None)).unwrap_err(),
            IdTokenError::WrongIssuer { .. }
        ));
        let t = sign_rs256("k1", &claims());
        assert_eq!(
            verify(&t, &jwks(), &expect(Some("other-nonce"))).unwrap_err(),
            IdTokenError::NonceMismatch
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("nonce");
        let t = sign_rs256("k1", &c);
        assert_eq!(
            verify(&t, &jwks(), &expect(Some("n-1"))).unwrap_err(),
            IdTokenError::NonceMismatch
        );
    }

    #[test]
    fn google_legacy_issuer_is_accepted_for_google_only() {
        let mut c = claims();
        c["iss"] = json!("accounts.google.com");
        let t = sign_rs256("k1", &c);
        let mut e = expect(None);
        e.issuer = "https://accounts.google.com";
        verify(&t, &jwks(), &e).unwrap();
        assert!(verify(&t, &jwks(), &expect(None)).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            verify("abc", &jwks(), &expect(None)),
            Err(IdTokenError::Malformed(_))
        ));
        assert!(matches!(
            decode_unverified("a.b.c"),
            Err(IdTokenError::Malformed(_))
        ));
    }
}

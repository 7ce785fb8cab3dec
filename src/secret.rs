//! A secret string (an upstream's `Authorization` value, a token): it prints as `<redacted>`
//! with `{:?}` and `{}`, so a log line or an error message that formats a struct holding one
//! never shows it. Its value is read only through [`Secret::expose`], which makes every place
//! that uses the value easy to find.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string; serialised as the plain string (the offers file stores it as written).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Only for the place that sends it (e.g. the upstream request header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("Bearer sk-very-secret");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), "Bearer sk-very-secret");
    }

    #[test]
    fn serialises_as_the_plain_string() {
        let s = Secret::new("Bearer x");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""Bearer x""#);
        let back: Secret = serde_json::from_str(r#""Bearer x""#).unwrap();
        assert_eq!(back, s);
        let yaml: Secret = serde_yaml_ng::from_str("Bearer y").unwrap();
        assert_eq!(yaml.expose(), "Bearer y");
    }
}

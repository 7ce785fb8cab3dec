//! A small parser for the Prometheus text exposition format (version 0.0.4, and the OpenMetrics
//! text that shares its sample syntax), as served on a verifier's `/metrics`.
//!
//! Written here rather than taken from `prometheus-parse`, which truncates label values at a
//! comma, drops samples with a `}` in a label value and keeps escapes raw. This one follows the
//! grammar: label values are quoted strings with `\\`, `\"` and `\n` escapes, and may contain
//! commas, braces, `=` and `#`. Values stay strings so that [`super::value::Decimal`] can read
//! them exactly.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The value as written ("40000", "1.7e+09", "NaN").
    pub value: String,
    /// Milliseconds since the epoch, when the line has one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// A line that does not follow the exposition grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct ParseError {
    pub line: usize,
    pub detail: String,
}

/// Parses a whole exposition. Comment lines (`# HELP`, `# TYPE`, `# EOF`, others) and blank
/// lines are skipped; the first malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|detail| ParseError {
            line: i + 1,
            detail,
        })?;
        out.push(sample);
    }
    Ok(out)
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        match self.bump() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(format!("expected `{want}`, found `{c}`")),
            None => Err(format!("expected `{want}`, found the end of the line")),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let mut c = Cursor { s: line, pos: 0 };
    if !c.peek().is_some_and(is_name_start) {
        return Err("expected a metric name".into());
    }
    let name = c.take_while(is_name_char).to_string();
    let after_name = c.pos;
    c.skip_blanks();
    let mut labels = BTreeMap::new();
    if c.peek() == Some('{') {
        c.bump();
        loop {
            c.skip_blanks();
            if c.peek() == Some('}') {
                c.bump();
                break;
            }
            if !c
                .peek()
                .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            {
                return Err(format!("expected a label name in the labels of {name}"));
            }
            let label = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            c.skip_blanks();
            c.expect('=')?;
            c.skip_blanks();
            let value = parse_quoted(&mut c)?;
            if labels.insert(label.to_string(), value).is_some() {
                return Err(format!("label {label} appears twice"));
            }
            c.skip_blanks();
            match c.bump() {
                Some(',') => continue,
                Some('}') => break,
                Some(ch) => return Err(format!("expected `,` or `}}`, found `{ch}`")),
                None => return Err("the labels are not closed with `}`".into()),
            }
        }
        c.skip_blanks();
    } else if c.pos == after_name
        && let Some(ch) = c.peek()
    {
        return Err(format!("unexpected `{ch}` after the name {name}"));
    }
    let value = c.take_while(|ch| !matches!(ch, ' ' | '\t'));
    if value.is_empty() {
        return Err(format!("{name} has no value"));
    }
    c.skip_blanks();
    let rest = c.take_while(|ch| !matches!(ch, ' ' | '\t'));
    let timestamp_ms = if rest.is_empty() {
        None
    } else {
        Some(
            rest.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {rest:?}"))?,
        )
    };
    c.skip_blanks();
    if c.pos != line.len() {
        return Err(format!("unexpected text after the sample of {name}"));
    }
    Ok(Sample {
        name,
        labels,
        value: value.to_string(),
        timestamp_ms,
    })
}

/// A double-quoted label value with the escapes `\\`, `\"` and `\n`.
fn parse_quoted(c: &mut Cursor<'_>) -> Result<String, String> {
    c.expect('"')?;
    let mut out = String::new();
    loop {
        match c.bump() {
            None => return Err("a label value is not closed with `\"`".into()),
            Some('"') => return Ok(out),
            Some('\\') => match c.bump() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    // The format defines only three escapes; keep anything else as written.
                    out.push('\\');
                    out.push(other);
                }
                None => return Err("a label value ends in a lone `\\`".into()),
            },
            Some(ch) => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Sample {
        let mut v = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_a_verifier_exposition() {
        let text = "\
# HELP obol_x402_verifier_charged_amount_total Amount charged by paid x402 requests, in the asset's atomic units (USDC: 1e-6 USDC).
# TYPE obol_x402_verifier_charged_amount_total counter
obol_x402_verifier_charged_amount_total{chain=\"eip155:84532\",offer_name=\"demo\",offer_namespace=\"local\"} 20000
# TYPE obol_x402_verifier_last_payment_success_seconds gauge
obol_x402_verifier_last_payment_success_seconds{chain=\"eip155:84532\",offer_name=\"demo\",offer_namespace=\"local\"} 1754000000.123

up 1
";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "obol_x402_verifier_charged_amount_total");
        assert_eq!(
            s[0].labels,
            labels(&[
                ("chain", "eip155:84532"),
                ("offer_name", "demo"),
                ("offer_namespace", "local")
            ])
        );
        assert_eq!(s[0].value, "20000");
        assert_eq!(s[1].value, "1754000000.123");
        assert_eq!(s[2].name, "up");
        assert!(s[2].labels.is_empty());
    }

    #[test]
    fn label_values_keep_commas_braces_and_escapes() {
        let s = one(r#"m{a="x,y",b="}",c="q\"z",d="back\\slash",e="line\nbreak",f="{=#}"} 3"#);
        assert_eq!(
            s.labels,
            labels(&[
                ("a", "x,y"),
                ("b", "}"),
                ("c", "q\"z"),
                ("d", "back\\slash"),
                ("e", "line\nbreak"),
                ("f", "{=#}"),
            ])
        );
        assert_eq!(s.value, "3");
        // An escaped backslash right before the closing quote.
        let s = one(r#"m{a="ends\\"} 1"#);
        assert_eq!(s.label("a"), Some("ends\\"));
        // Unicode passes through.
        let s = one("m{a=\"caf\u{e9} \u{1f600}\"} 1");
        assert_eq!(s.label("a"), Some("caf\u{e9} \u{1f600}"));
    }

    #[test]
    fn whitespace_trailing_comma_timestamps_and_special_values() {
        let s = one("m { a = \"1\" , b=\"2\", } 4.5e+06 1700000000000");
        assert_eq!(s.labels, labels(&[("a", "1"), ("b", "2")]));
        assert_eq!(s.value, "4.5e+06");
        assert_eq!(s.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(one("m{} NaN").value, "NaN");
        assert_eq!(one("m\t+Inf").value, "+Inf");
        assert_eq!(one("m -Inf\r").value, "-Inf");
        assert_eq!(parse("# EOF\n").unwrap(), vec![]);
    }

    #[test]
    fn malformed_lines_are_errors_with_their_number() {
        for (text, want) in [
            ("ok 1\nm{a=\"x} 1", "line 2: a label value is not closed"),
            ("m{a=x} 1", "line 1: expected `\"`, found `x`"),
            (
                "m{a=\"x\" b=\"y\"} 1",
                "line 1: expected `,` or `}`, found `b`",
            ),
            ("m{a=\"x\"", "line 1: the labels are not closed"),
            ("m{a=\"1\",a=\"2\"} 1", "line 1: label a appears twice"),
            ("m", "line 1: m has no value"),
            ("m{} ", "line 1: m has no value"),
            ("m 1 2 3", "line 1: unexpected text after the sample of m"),
            ("m 1 soon", "line 1: invalid timestamp \"soon\""),
            ("1m 1", "line 1: expected a metric name"),
            ("m-x 1", "line 1: unexpected `-` after the name m"),
            ("m{1a=\"x\"} 1", "line 1: expected a label name"),
            ("m{a=\"x\\", "line 1: a label value ends in a lone `\\`"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}

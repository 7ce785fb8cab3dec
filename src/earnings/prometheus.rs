//! A Prometheus HTTP API client: instant vector queries (`GET /api/v1/query`) and the list of
//! loaded rules (`GET /api/v1/rules`), straight to a URL or through the Kubernetes API server's
//! service proxy (`/api/v1/namespaces/{ns}/services/{svc}/proxy/...`), so that only a
//! kubeconfig is needed to read an in-cluster Prometheus.
//!
//! Failures are classified for the user: unreachable, an HTTP error (with what the Kubernetes
//! API server said, when it is in the path), a `"status":"error"` answer, an unreadable answer.
//! Missing rules and empty results are decided by [`super::query`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Time limit for one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an unexpected body an error message repeats.
const MAX_EXCERPT: usize = 200;

/// The in-cluster Prometheus of kube-prometheus-stack (release `monitoring`): the operator's
/// `prometheus-operated` service in namespace `monitoring`, port 9090.
pub const DEFAULT_KUBE_NAMESPACE: &str = "monitoring";
pub const DEFAULT_KUBE_SERVICE: &str = "prometheus-operated:9090";

/// How to reach a Prometheus inside a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeTarget {
    /// Kubeconfig file; default: `$KUBECONFIG`, `~/.kube/config`, then the in-cluster account.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; default: the current one.
    pub context: Option<String>,
    pub namespace: String,
    /// `NAME:PORT` (or `NAME`, for the service's only port).
    pub service: String,
}

/// Where the queries go.
enum Transport {
    Http {
        base: String,
        client: reqwest::Client,
    },
    Kube {
        client: kube::Client,
        namespace: String,
        service: String,
        api_server: String,
    },
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorSample {
    pub labels: BTreeMap<String, String>,
    /// The value as Prometheus wrote it (a float string).
    pub value: String,
}

/// Why talking to Prometheus failed.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("invalid Prometheus URL {url:?}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("cannot set up the Kubernetes client: {detail}")]
    Kube { detail: String },
    #[error("cannot reach Prometheus at {target}: {detail}")]
    Unreachable {
        target: String,
        detail: String,
        via_kube: bool,
    },
    #[error("Prometheus at {target} answered HTTP {status}: {detail}")]
    Http {
        target: String,
        status: u16,
        detail: String,
        via_kube: bool,
    },
    #[error("Prometheus at {target} refused the query {query:?}: {error_type}: {error}")]
    Api {
        target: String,
        query: String,
        error_type: String,
        error: String,
    },
    #[error("the answer of {target} is not a Prometheus API answer: {detail}")]
    Decode { target: String, detail: String },
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    let mut out: String = s.chars().take(MAX_EXCERPT).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    if out.is_empty() {
        out = "(empty body)".into();
    }
    out
}

/// The names Kubernetes allows in a service proxy path: a DNS label, optionally `:PORT`
/// (number or name), optionally prefixed by `http:`/`https:`.
fn valid_service(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    !s.is_empty()
        && parts.len() <= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        })
}

fn valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `?a=b&c=d`, form-encoded.
fn query_string(params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let mut u = reqwest::Url::parse("http://x/").expect("static URL");
    u.query_pairs_mut().extend_pairs(params);
    u.query().map(|q| format!("?{q}")).unwrap_or_default()
}

#[derive(Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct VectorData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<VectorElem>,
}

#[derive(Deserialize)]
struct VectorElem {
    metric: BTreeMap<String, String>,
    value: (serde_json::Value, String),
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    #[serde(default)]
    rules: Vec<RuleEntry>,
}

#[derive(Deserialize)]
struct RuleEntry {
    name: String,
}

/// A Prometheus server to query.
pub struct Prometheus {
    transport: Transport,
}

impl Prometheus {
    /// A Prometheus at `url` (`http://host:9090`, or with a path prefix such as
    /// `https://host/prometheus`).
    pub fn http(url: &str) -> Result<Prometheus, PrometheusError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|e| PrometheusError::BadUrl {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PrometheusError::BadUrl {
                url: url.to_string(),
                detail: "use an http:// or https:// URL".into(),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PrometheusError::BadUrl {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        Ok(Prometheus {
            transport: Transport::Http { base, client },
        })
    }

    /// A Prometheus service inside a cluster, reached through the API server's service proxy
    /// with the credentials of a kubeconfig.
    pub async fn kube(target: &KubeTarget) -> Result<Prometheus, PrometheusError> {
        if !valid_namespace(&target.namespace) {
            return Err(PrometheusError::Kube {
                detail: format!("invalid namespace {:?}", target.namespace),
            });
        }
        if !valid_service(&target.service) {
            return Err(PrometheusError::Kube {
                detail: format!(
                    "invalid service {:?}: use NAME or NAME:PORT, e.g. {DEFAULT_KUBE_SERVICE}",
                    target.service
                ),
            });
        }
        let config = kube_config(target).await?;
        let api_server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|e| PrometheusError::Kube {
            detail: e.to_string(),
        })?;
        Ok(Prometheus {
            transport: Transport::Kube {
                client,
                namespace: target.namespace.clone(),
                service: target.service.clone(),
                api_server: api_server.trim_end_matches('/').to_string(),
            },
        })
    }

    /// How the user knows this Prometheus: its URL, or the service and the API server.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Http { base, .. } => base.clone(),
            Transport::Kube {
                namespace,
                service,
                api_server,
                ..
            } => format!("service {namespace}/{service} (through the Kubernetes API {api_server})"),
        }
    }

    /// Whether queries go through the Kubernetes API server.
    pub fn via_kube(&self) -> bool {
        matches!(self.transport, Transport::Kube { .. })
    }

    /// `GET path?params` and its body, when the status is 2xx or the body is a Prometheus API
    /// answer (errors come with 4xx/5xx and a JSON body).
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<String, PrometheusError> {
        let qs = query_string(params);
        let (status, body) = match &self.transport {
            Transport::Http { base, client } => {
                let url = format!("{base}{path}{qs}");
                let resp =
                    client
                        .get(&url)
                        .send()
                        .await
                        .map_err(|e| PrometheusError::Unreachable {
                            target: self.describe(),
                            detail: reqwest_detail(&e),
                            via_kube: false,
                        })?;
                let status = resp.status().as_u16();
                let body = resp
                    .text()
                    .await
                    .map_err(|e| PrometheusError::Unreachable {
                        target: self.describe(),
                        detail: format!("reading the answer: {}", reqwest_detail(&e)),
                        via_kube: false,
                    })?;
                (status, body)
            }
            Transport::Kube {
                client,
                namespace,
                service,
                ..
            } => {
                let uri =
                    format!("/api/v1/namespaces/{namespace}/services/{service}/proxy{path}{qs}");
                let req = http::Request::get(uri)
                    .body(kube::client::Body::empty())
                    .map_err(|e| PrometheusError::Kube {
                        detail: e.to_string(),
                    })?;
                let unreachable = |detail: String| PrometheusError::Unreachable {
                    target: self.describe(),
                    detail,
                    via_kube: true,
                };
                let exchange = async {
                    let resp = client
                        .send(req)
                        .await
                        .map_err(|e| unreachable(error_chain(&e)))?;
                    let status = resp.status().as_u16();
                    let bytes = resp
                        .into_body()
                        .collect_bytes()
                        .await
                        .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
                    Ok::<_, PrometheusError>((status, String::from_utf8_lossy(&bytes).into_owned()))
                };
                tokio::time::timeout(REQUEST_TIMEOUT, exchange)
                    .await
                    .map_err(|_| {
                        unreachable(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
                    })??
            }
        };
        let api_answer = serde_json::from_str::<ApiAnswer>(&body)
            .is_ok_and(|a| a.status == "success" || a.status == "error");
        if (200..300).contains(&status) || api_answer {
            return Ok(body);
        }
        Err(PrometheusError::Http {
            target: self.describe(),
            status,
            detail: kube_status_message(&body).unwrap_or_else(|| excerpt(&body)),
            via_kube: self.via_kube(),
        })
    }

    /// `data` of a `"status":"success"` answer.
    fn data(&self, body: &str, query: &str) -> Result<serde_json::Value, PrometheusError> {
        let answer: ApiAnswer =
            serde_json::from_str(body).map_err(|e| PrometheusError::Decode {
                target: self.describe(),
                detail: format!("{e}; the answer starts with {:?}", excerpt(body)),
            })?;
        if answer.status != "success" {
            return Err(PrometheusError::Api {
                target: self.describe(),
                query: query.to_string(),
                error_type: answer.error_type.unwrap_or_else(|| "error".into()),
                error: answer.error.unwrap_or_else(|| "(no message)".into()),
            });
        }
        answer.data.ok_or_else(|| PrometheusError::Decode {
            target: self.describe(),
            detail: "a success answer without `data`".into(),
        })
    }

    /// An instant query whose result must be a vector.
    pub async fn query(&self, promql: &str) -> Result<Vec<VectorSample>, PrometheusError> {
        let body = self.get("/api/v1/query", &[("query", promql)]).await?;
        let data = self.data(&body, promql)?;
        let v: VectorData = serde_json::from_value(data).map_err(|e| PrometheusError::Decode {
            target: self.describe(),
            detail: format!("query {promql:?}: {e}"),
        })?;
        if v.result_type != "vector" {
            return Err(PrometheusError::Decode {
                target: self.describe(),
                detail: format!(
                    "query {promql:?} gave a {} instead of a vector",
                    v.result_type
                ),
            });
        }
        Ok(v.result
            .into_iter()
            .map(|e| VectorSample {
                labels: e.metric,
                value: e.value.1,
            })
            .collect())
    }

    /// The names of the recording rules Prometheus has loaded.
    pub async fn recording_rules(&self) -> Result<Vec<String>, PrometheusError> {
        const WHAT: &str = "GET /api/v1/rules";
        let body = self.get("/api/v1/rules", &[("type", "record")]).await?;
        let data = self.data(&body, WHAT)?;
        let rules: RulesData =
            serde_json::from_value(data).map_err(|e| PrometheusError::Decode {
                target: self.describe(),
                detail: format!("{WHAT}: {e}"),
            })?;
        Ok(rules
            .groups
            .into_iter()
            .flat_map(|g| g.rules.into_iter().map(|r| r.name))
            .collect())
    }
}

/// "connection failed: Connection refused (os error 111)": the kind and the innermost cause.
pub(super) fn reqwest_detail(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The source chain holds the useful part ("Connection refused").
    let mut detail = what.to_string();
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        detail.push_str(": ");
        detail.push_str(&l);
    }
    detail
}

/// An error and its causes, `outer: inner: innermost`, skipping causes already in the text.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The `message` of a Kubernetes `Status` body (errors of the API server itself).
fn kube_status_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    (v.get("kind")?.as_str()? == "Status")
        .then(|| v.get("message")?.as_str().map(excerpt))
        .flatten()
}

async fn kube_config(target: &KubeTarget) -> Result<kube::Config, PrometheusError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let err = |e: &dyn std::fmt::Display| PrometheusError::Kube {
        detail: e.to_string(),
    };
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    match (&target.kubeconfig, &target.context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| PrometheusError::Kube {
                detail: format!("kubeconfig {}: {e}", path.display()),
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| err(&e))
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| err(&e)),
        (None, None) => kube::Config::infer().await.map_err(|e| err(&e)),
    }
}

impl PrometheusError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            PrometheusError::BadUrl { .. } => {
                "give the Prometheus base URL, e.g. --prometheus http://127.0.0.1:9090".into()
            }
            PrometheusError::Kube { .. } => {
                "check --kubeconfig and --context (`kubectl config get-contexts`)".into()
            }
            PrometheusError::Unreachable { via_kube: true, .. } => {
                "check that the cluster answers (`kubectl get --raw /version`), or pass --kubeconfig/--context".into()
            }
            PrometheusError::Unreachable { .. } => {
                "check the URL and that Prometheus runs (`curl URL/-/ready`); in a cluster use --kube, or read a verifier directly with --scrape URL/metrics".into()
            }
            PrometheusError::Http {
                via_kube: true,
                status,
                ..
            } => match status {
                401 | 403 => "your kubeconfig user needs `get` on `services/proxy` in the Prometheus namespace".into(),
                404 => "find the Prometheus service with `kubectl get svc -A | grep prometheus` and pass --kube-namespace and --kube-service NAME:PORT".into(),
                502 | 503 => "the service has no ready Prometheus behind it: check its pods (`kubectl -n monitoring get pods`)".into(),
                _ => "check --kube-namespace and --kube-service (NAME:PORT of the Prometheus HTTP API)".into(),
            },
            PrometheusError::Http { status: 503, .. } => {
                "Prometheus is starting or overloaded: try again in a moment".into()
            }
            PrometheusError::Http { .. } | PrometheusError::Decode { .. } => {
                "is this the base URL of a Prometheus server? obol calls URL/api/v1/query".into()
            }
            PrometheusError::Api { .. } => {
                "obol needs Prometheus 2.x or newer; if it is, please report this as a bug".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_and_namespace_validation() {
        for ok in [
            "prometheus-operated:9090",
            "prometheus-operated",
            "monitoring-kube-prometheus-prometheus:http-web",
            "http:prometheus:9090",
        ] {
            assert!(valid_service(ok), "{ok}");
        }
        for bad in ["", "a/b", "a:b:c:d", "Prom:9090", "a:", "a?x=1", "../x"] {
            assert!(!valid_service(bad), "{bad}");
        }
        assert!(valid_namespace("monitoring"));
        assert!(!valid_namespace("a/b"));
        assert!(!valid_namespace(""));
    }

    #[test]
    fn query_strings_are_encoded() {
        assert_eq!(
            query_string(&[("query", r#"x{a="b c"} + 1"#)]),
            "?query=x%7Ba%3D%22b+c%22%7D+%2B+1"
        );
        assert_eq!(query_string(&[]), "");
    }

    #[test]
    fn kube_status_messages() {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services \"nope\" not found","reason":"NotFound","code":404}"#;
        assert_eq!(
            kube_status_message(body).as_deref(),
            Some("services \"nope\" not found")
        );
        assert_eq!(kube_status_message("404 page not found"), None);
        assert_eq!(kube_status_message(r#"{"status":"error"}"#), None);
    }

    #[test]
    fn bad_urls() {
        assert!(matches!(
            Prometheus::http("ftp://x"),
            Err(PrometheusError::BadUrl { .. })
        ));
        assert!(matches!(
            Prometheus::http("not a url"),
            Err(PrometheusError::BadUrl { .. })
        ));
        let p = Prometheus::http("http://127.0.0.1:9090/").unwrap();
        assert_eq!(p.describe(), "http://127.0.0.1:9090");
        assert!(!p.via_kube());
    }

    #[test]
    fn error_chains() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = PrometheusError::Kube { detail: "x".into() };
        assert_eq!(
            error_chain(&outer),
            "cannot set up the Kubernetes client: x"
        );
        assert_eq!(error_chain(&inner), "refused");
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt(""), "(empty body)");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), MAX_EXCERPT + 1);
    }
}

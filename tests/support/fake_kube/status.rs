//! `metav1.Status` failure bodies, as the apiserver sends them with 4xx answers.

use serde_json::{Value, json};

/// An API failure: HTTP code, `reason`, `message` and optional `details`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// `group`/`kind`(resource plural)/`name` as the apiserver puts in `details`. The apiserver puts
/// the *resource* (e.g. `secrets`) in `details.kind`.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub group: String,
    pub resource: String,
    pub name: String,
}

impl Subject {
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Subject {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
        }
    }

    /// `secrets "x"` or `serviceoffers.obol.org "x"`, the apiserver's qualified resource.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            format!("{} {:?}", self.resource, self.name)
        } else {
            format!("{}.{} {:?}", self.resource, self.group, self.name)
        }
    }

    fn details(&self) -> Value {
        let mut d = json!({ "name": self.name, "kind": self.resource });
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(s: &Subject) -> Self {
        ApiError {
            details: Some(s.details()),
            ..Self::new(404, "NotFound", format!("{} not found", s.qualified()))
        }
    }

    /// 404 for a path no resource serves.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(s: &Subject) -> Self {
        ApiError {
            details: Some(s.details()),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} already exists", s.qualified()),
            )
        }
    }

    /// Optimistic-concurrency failure (stale `resourceVersion`, failed precondition).
    pub fn conflict(s: &Subject, why: &str) -> Self {
        ApiError {
            details: Some(s.details()),
            ..Self::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {}: {why}", s.qualified()),
            )
        }
    }

    pub fn stale(s: &Subject) -> Self {
        Self::conflict(
            s,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with `details.causes[]` (`field`, `message`, `reason`).
    pub fn invalid(s: &Subject, kind: &str, causes: Vec<(String, String)>) -> Self {
        let text: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let mut details = s.details();
        details["kind"] = json!(kind);
        details["causes"] = Value::Array(
            causes
                .iter()
                .map(|(f, m)| json!({ "reason": "FieldValueInvalid", "message": m, "field": f }))
                .collect(),
        );
        ApiError {
            details: Some(details),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} {:?} is invalid: {}", s.name, text.join(", ")),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml (got {ct:?})"
            ),
        )
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml",
        )
    }

    /// The watch answer for a resourceVersion older than the kept history.
    pub fn expired(rv: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {rv} ({oldest})"),
        )
    }

    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

/// A `Status` with `status: Success`, as returned by DELETE when the object is gone at once.
pub fn success(s: &Subject, uid: &str) -> Value {
    let mut details = s.details();
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

//! `?watch=true` streams: newline-delimited `{"type": ..., "object": ...}` events, from the
//! history after the requested resourceVersion (410 `Expired` when it is older than the kept
//! history), or the current objects as ADDED first (no resourceVersion, `"0"`, or
//! `sendInitialEvents=true`, which ends the initial part with a BOOKMARK annotated
//! `k8s.io/initial-events-end`). Then live events, periodic BOOKMARKs with
//! `allowWatchBookmarks=true`, and the server closes the stream after `timeoutSeconds`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Event, EventType, Store};

/// Turns a stored object into what the client asked for (plain object, PartialObjectMetadata,
/// or a Table row); the flag is true for the first event of the stream.
pub type Presenter = Box<dyn Fn(&Value, bool) -> Value + Send + Sync>;

pub struct WatchRequest {
    pub res: Arc<ResourceInfo>,
    pub version: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub bookmark_interval: Duration,
    pub content_type: String,
    pub present: Presenter,
}

struct Filter {
    res: Arc<ResourceInfo>,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, ns: &str, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches_object(obj)
            && self.fields.matches(obj)
    }

    /// The event this watch sees for `ev`, if any (selector transitions become ADDED/DELETED).
    fn view<'a>(&self, ev: &'a Event) -> Option<(EventType, &'a Value)> {
        if ev.gr != self.res.gr() {
            return None;
        }
        let now = self.matches(&ev.namespace, &ev.object);
        match ev.kind {
            EventType::Modified => {
                let before = ev
                    .old
                    .as_ref()
                    .is_some_and(|o| self.matches(&ev.namespace, o));
                match (before, now) {
                    (true, true) => Some((EventType::Modified, &ev.object)),
                    (true, false) => Some((EventType::Deleted, &ev.object)),
                    (false, true) => Some((EventType::Added, &ev.object)),
                    (false, false) => None,
                }
            }
            kind => now.then_some((kind, &ev.object)),
        }
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = serde_json::to_vec(v).expect("json");
    s.push(b'\n');
    Bytes::from(s)
}

fn bookmark(res: &ResourceInfo, version: &str, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if initial_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    json!({
        "type": "BOOKMARK",
        "object": { "kind": res.kind, "apiVersion": res.api_version(version), "metadata": meta },
    })
}

pub fn watch(store: &Arc<Mutex<Store>>, req: WatchRequest) -> Result<Response, ApiError> {
    let filter = Filter {
        res: req.res.clone(),
        namespace: req.namespace.clone(),
        labels: req.labels.clone(),
        fields: req.fields.clone(),
    };
    let mut first = true;
    let emit = |kind: EventType, obj: &Value, first: &mut bool| -> Bytes {
        let o = (req.present)(obj, *first);
        *first = false;
        line(&json!({ "type": kind.as_str(), "object": o }))
    };

    let rv_param = req.resource_version.as_deref().filter(|s| !s.is_empty());
    let from: Option<u64> = match rv_param {
        None | Some("0") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {s:?}: must be a decimal integer"
            ))
        })?),
    };

    let (rx, current, initial) = {
        let s = store.lock().unwrap_or_else(PoisonError::into_inner);
        let (rx, current) = s.subscribe();
        let mut lines = Vec::new();
        if req.send_initial_events || from.is_none() {
            let t = super::store::Target {
                res: req.res.clone(),
                version: req.version.clone(),
                namespace: req.namespace.clone(),
            };
            let (items, _, _) = s.list(&t, &req.labels, &req.fields, None, None);
            for o in &items {
                lines.push(emit(EventType::Added, o, &mut first));
            }
            if req.send_initial_events {
                lines.push(line(&bookmark(&req.res, &req.version, current, true)));
            }
        } else if let Some(n) = from {
            if n < s.history_floor() {
                let status = ApiError::expired(n, s.history_floor() + 1).to_status();
                let body = line(&json!({ "type": "ERROR", "object": status }));
                return Ok(respond(&req.content_type, Body::from(body)));
            }
            for ev in s.history_after(n) {
                if let Some((kind, obj)) = filter.view(&ev) {
                    lines.push(emit(kind, obj, &mut first));
                }
            }
        }
        (rx, current, lines)
    };

    let (tx, out) = mpsc::channel::<Bytes>(64);
    let WatchRequest {
        res,
        version,
        timeout,
        bookmark_interval,
        bookmarks,
        present,
        content_type,
        ..
    } = req;
    tokio::spawn(async move {
        let mut rx: broadcast::Receiver<Arc<Event>> = rx;
        let mut first = first;
        for l in initial {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let mut last = current;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + bookmark_interval,
            bookmark_interval,
        );
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(line(&bookmark(&res, &version, last, false))).await.is_err() {
                        break;
                    }
                }
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= last {
                            continue;
                        }
                        last = ev.rv;
                        if let Some((kind, obj)) = filter.view(&ev) {
                            let o = present(obj, first);
                            first = false;
                            if tx.send(line(&json!({ "type": kind.as_str(), "object": o }))).await.is_err() {
                                break;
                            }
                        }
                    }
                    // Too slow a reader: end the stream; the client resumes from its last rv.
                    Err(_) => break,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), out))
    });
    Ok(respond(&content_type, Body::from_stream(stream)))
}

fn respond(content_type: &str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let ct = if content_type.is_empty() {
        "application/json"
    } else {
        content_type
    };
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

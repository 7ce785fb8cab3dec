//! The CustomResourceDefinitions of [`ServiceOffer`] and [`PurchaseRequest`]: the schema is
//! generated from the Rust types (kube-derive + schemars), then the validation of the obol-stack
//! CRDs is added here in one place: patterns, enums, ranges, required fields, defaults, and
//! `conditions` as a list keyed by `type` (so that server-side apply merges conditions written
//! by different managers).
//!
//! [`validate_offer_spec`] checks the same rules on the client, so `obol sell create` refuses
//! bad input before any request and the verifier can name what is wrong with an offer that got
//! into a cluster without the CRD's validation.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::types::{
    DEFAULT_MAX_TIMEOUT_SECONDS, DEFAULT_UPSTREAM_PORT, OfferPrice, PurchaseRequest, ServiceOffer,
    ServiceOfferSpec,
};
use crate::offers::declared;

/// An EVM address: `0x` and 40 hex digits.
pub const ADDRESS_PATTERN: &str = "^0x[0-9a-fA-F]{40}$";
/// An offer's URL path.
pub const PATH_PATTERN: &str = "^/[a-zA-Z0-9/_.-]*$";
/// A declared route's path (relative to the offer's; `*` for a subtree).
pub const ROUTE_PATH_PATTERN: &str = "^/[a-zA-Z0-9/_.*-]*$";
/// A human decimal amount, e.g. `0.001`.
pub const DECIMAL_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?$";
/// An amount in atomic units, e.g. `1000`.
pub const ATOMIC_PATTERN: &str = "^[0-9]+$";
/// A URL the buyer may call.
pub const URL_PATTERN: &str = "^https?://";

/// Values of `spec.type`.
pub const OFFER_TYPES: &[&str] = &[
    "inference",
    "fine-tuning",
    "http",
    "agent",
    "dataset",
    "skill",
];
/// Values of `spec.model.runtime`.
pub const MODEL_RUNTIMES: &[&str] = &["ollama", "vllm", "tgi"];
/// Values of `spec.payment.scheme`.
pub const SCHEMES: &[&str] = &["exact"];
/// Values of `asset.transferMethod`.
pub const TRANSFER_METHODS: &[&str] = &["eip3009", "permit2"];
/// Largest `spec.count` of a PurchaseRequest.
pub const MAX_PURCHASE_COUNT: i64 = 2500;

/// The CRD `serviceoffers.obol.org`.
pub fn service_offer_crd() -> CustomResourceDefinition {
    with_schema(ServiceOffer::crd(), |s| {
        let spec = node(s, "spec");
        spec["required"] = json!(["payment"]);
        set(spec, "type", json!({"enum": OFFER_TYPES}));
        set(spec, "path", json!({"pattern": PATH_PATTERN}));

        let model = node(spec, "model");
        model["required"] = json!(["name", "runtime"]);
        set(model, "name", json!({"minLength": 1}));
        set(model, "runtime", json!({"enum": MODEL_RUNTIMES}));

        let upstream = node(spec, "upstream");
        upstream["required"] = json!(["service"]);
        set(upstream, "service", json!({"minLength": 1}));
        set(
            upstream,
            "port",
            json!({"minimum": 1, "maximum": 65535, "default": DEFAULT_UPSTREAM_PORT}),
        );
        set(upstream, "healthPath", json!({"pattern": "^/"}));

        let payment = node(spec, "payment");
        payment["required"] = json!(["price"]);
        set(
            payment,
            "scheme",
            json!({"enum": SCHEMES, "default": "exact"}),
        );
        set(
            payment,
            "maxTimeoutSeconds",
            json!({"minimum": 1, "default": DEFAULT_MAX_TIMEOUT_SECONDS}),
        );
        set(payment, "payTo", json!({"pattern": ADDRESS_PATTERN}));
        asset_rules(node(payment, "asset"));
        price_rules(node(payment, "price"));

        let routes = node(spec, "routes");
        routes["maxItems"] = json!(declared::MAX_ROUTES);
        let route = &mut routes["items"];
        route["required"] = json!(["path"]);
        set(
            route,
            "path",
            json!({"pattern": ROUTE_PATH_PATTERN, "maxLength": declared::MAX_PATH_LEN}),
        );
        node(route, "methods")["items"]["enum"] = json!(declared::METHODS);
        set(
            route,
            "gate",
            json!({"enum": declared::GATES, "default": "paid"}),
        );
        set(
            route,
            "summary",
            json!({"maxLength": declared::MAX_SUMMARY_CHARS}),
        );
        set(route, "freeQuota", json!({"minimum": 0}));
        price_rules(node(route, "price"));

        set(
            node(spec, "registration"),
            "enabled",
            json!({"default": false}),
        );
        condition_rules(node(s, "status"));
    })
}

/// The CRD `purchaserequests.obol.org`.
pub fn purchase_request_crd() -> CustomResourceDefinition {
    with_schema(PurchaseRequest::crd(), |s| {
        let spec = node(s, "spec");
        spec["required"] = json!(["endpoint", "model", "count", "payment"]);
        set(spec, "endpoint", json!({"pattern": URL_PATTERN}));
        set(spec, "model", json!({"minLength": 1}));
        set(
            spec,
            "count",
            json!({"minimum": 1, "maximum": MAX_PURCHASE_COUNT}),
        );

        let auth = &mut node(spec, "preSignedAuths")["items"];
        let payment = node(auth, "payment");
        if let Some(obj) = payment.as_object_mut() {
            obj.remove("additionalProperties");
        }
        payment["x-kubernetes-preserve-unknown-fields"] = json!(true);

        let refill = node(spec, "autoRefill");
        set(refill, "enabled", json!({"default": false}));
        set(refill, "threshold", json!({"minimum": 0}));
        set(refill, "count", json!({"minimum": 1}));
        set(refill, "maxTotal", json!({"minimum": 0}));
        set(refill, "maxSpendPerDay", json!({"pattern": ATOMIC_PATTERN}));

        let payment = node(spec, "payment");
        payment["required"] = json!(["network", "payTo", "price", "asset"]);
        set(payment, "network", json!({"minLength": 1}));
        set(payment, "payTo", json!({"pattern": ADDRESS_PATTERN}));
        set(payment, "price", json!({"pattern": ATOMIC_PATTERN}));
        set(payment, "asset", json!({"pattern": ADDRESS_PATTERN}));
        set(
            payment,
            "assetDecimals",
            json!({"minimum": 0, "maximum": 255}),
        );
        set(
            payment,
            "assetTransferMethod",
            json!({"enum": TRANSFER_METHODS}),
        );

        let status = node(s, "status");
        set(status, "probedAt", json!({"format": "date-time"}));
        condition_rules(status);
    })
}

/// Both CRDs, ServiceOffer first.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![service_offer_crd(), purchase_request_crd()]
}

/// Price fields of an `OfferPrice` (at least one, each a decimal).
const PRICE_FIELDS: [&str; 4] = ["perRequest", "perMTok", "perHour", "perEpoch"];

fn price_rules(price: &mut Value) {
    price["minProperties"] = json!(1);
    for field in PRICE_FIELDS {
        set(price, field, json!({"pattern": DECIMAL_PATTERN}));
    }
}

fn asset_rules(asset: &mut Value) {
    set(asset, "address", json!({"pattern": ADDRESS_PATTERN}));
    set(asset, "decimals", json!({"minimum": 0, "maximum": 255}));
    set(asset, "transferMethod", json!({"enum": TRANSFER_METHODS}));
}

fn condition_rules(status: &mut Value) {
    let conditions = node(status, "conditions");
    conditions["x-kubernetes-list-type"] = json!("map");
    conditions["x-kubernetes-list-map-keys"] = json!(["type"]);
    let item = &mut conditions["items"];
    item["required"] = json!(["type", "status"]);
    set(item, "type", json!({"minLength": 1}));
    set(
        item,
        "status",
        json!({"enum": ["True", "False", "Unknown"]}),
    );
    set(item, "lastTransitionTime", json!({"format": "date-time"}));
}

/// Applies `edit` to the openAPIV3Schema of the CRD's only version, after removing what the
/// generator adds but a CRD should not carry: `default` values of Rust's `Default` (the
/// defaults the cluster applies are set explicitly), `nullable` (a null is pruned instead) and
/// `title`.
fn with_schema(
    crd: CustomResourceDefinition,
    edit: impl FnOnce(&mut Value),
) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    let schema = &mut value["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    strip_generated(schema);
    edit(schema);
    serde_json::from_value(value).expect("the edited CRD deserializes")
}

fn strip_generated(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.remove("default");
    obj.remove("nullable");
    obj.remove("title");
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for p in props.values_mut() {
            strip_generated(p);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get_mut(key) {
            strip_generated(sub);
        }
    }
}

/// The schema of property `name` of an object schema. Panics when absent: the CRD is built
/// from our own types, and the unit tests build it.
fn node<'a>(schema: &'a mut Value, name: &str) -> &'a mut Value {
    let prop = &mut schema["properties"][name];
    assert!(
        prop.is_object(),
        "CRD schema has no property `{name}` (types.rs and crd.rs disagree)"
    );
    prop
}

/// Merges `rules` into the schema of property `name`.
fn set(schema: &mut Value, name: &str, rules: Value) {
    let prop = node(schema, name);
    if let (Some(dst), Value::Object(src)) = (prop.as_object_mut(), rules) {
        dst.extend(src);
    }
}

// ---------------------------------------------------------------------------------------------
// client-side twin of the schema

/// One rule of the CRD schema an offer breaks: the field's path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// JSON path of the field, e.g. `spec.payment.payTo`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks an offer's spec against the rules of [`service_offer_crd`] (not whether the chain
/// or asset is known: that is the verifier's route resolution). Empty when the spec is valid.
pub fn validate_offer_spec(spec: &ServiceOfferSpec) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, message: String| {
        problems.push(SpecProblem {
            field: field.to_string(),
            message,
        })
    };
    if let Some(t) = spec.offer_type.as_deref()
        && !OFFER_TYPES.contains(&t)
    {
        bad(
            "spec.type",
            format!("`{t}` is not one of {}", OFFER_TYPES.join(", ")),
        );
    }
    if let Some(p) = spec.path.as_deref()
        && !is_offer_path(p)
    {
        bad(
            "spec.path",
            format!("`{p}` must start with / and use only letters, digits and / _ . -"),
        );
    }
    if let Some(m) = &spec.model {
        if m.name.is_empty() {
            bad("spec.model.name", "is required when model is set".into());
        }
        if !MODEL_RUNTIMES.contains(&m.runtime.as_str()) {
            bad(
                "spec.model.runtime",
                format!(
                    "`{}` is not one of {}",
                    m.runtime,
                    MODEL_RUNTIMES.join(", ")
                ),
            );
        }
    }
    if let Some(u) = &spec.upstream {
        if u.service.is_empty() {
            bad("spec.upstream.service", "is required".into());
        }
        if let Some(port) = u.port
            && !(1..=65535).contains(&port)
        {
            bad("spec.upstream.port", format!("{port} is not in 1..65535"));
        }
        if let Some(h) = u.health_path.as_deref()
            && !h.starts_with('/')
        {
            bad(
                "spec.upstream.healthPath",
                format!("`{h}` must start with /"),
            );
        }
    }
    let pay = &spec.payment;
    if let Some(s) = pay.scheme.as_deref()
        && !SCHEMES.contains(&s)
    {
        bad(
            "spec.payment.scheme",
            format!("`{s}` is not supported (only exact)"),
        );
    }
    if let Some(t) = pay.max_timeout_seconds
        && t < 1
    {
        bad("spec.payment.maxTimeoutSeconds", format!("{t} is below 1"));
    }
    if let Some(a) = pay.pay_to.as_deref()
        && !is_address(a)
    {
        bad(
            "spec.payment.payTo",
            format!("`{a}` is not an address (0x and 40 hex digits)"),
        );
    }
    if let Some(asset) = &pay.asset {
        if let Some(a) = asset.address.as_deref()
            && !is_address(a)
        {
            bad(
                "spec.payment.asset.address",
                format!("`{a}` is not an address (0x and 40 hex digits)"),
            );
        }
        if let Some(d) = asset.decimals
            && !(0..=255).contains(&d)
        {
            bad(
                "spec.payment.asset.decimals",
                format!("{d} is not in 0..255"),
            );
        }
        if let Some(m) = asset.transfer_method.as_deref()
            && !TRANSFER_METHODS.contains(&m)
        {
            bad(
                "spec.payment.asset.transferMethod",
                format!("`{m}` is not one of {}", TRANSFER_METHODS.join(", ")),
            );
        }
    }
    price_problems("spec.payment.price", &pay.price, &mut bad);
    if spec.routes.len() > declared::MAX_ROUTES {
        bad(
            "spec.routes",
            format!(
                "{} routes; at most {} are allowed",
                spec.routes.len(),
                declared::MAX_ROUTES
            ),
        );
    }
    for (j, r) in spec.routes.iter().enumerate() {
        let at = |f: &str| format!("spec.routes[{j}].{f}");
        if !is_route_path(&r.path) {
            bad(
                &at("path"),
                format!(
                    "`{}` must start with / and use only letters, digits and / _ . * -",
                    r.path
                ),
            );
        } else if r.path.chars().count() > declared::MAX_PATH_LEN {
            bad(
                &at("path"),
                format!("is longer than {} characters", declared::MAX_PATH_LEN),
            );
        }
        for m in &r.methods {
            if !declared::METHODS.contains(&m.as_str()) {
                bad(
                    &at("methods"),
                    format!("`{m}` is not one of {}", declared::METHODS.join(", ")),
                );
            }
        }
        if let Some(g) = r.gate.as_deref()
            && !declared::GATES.contains(&g)
        {
            bad(
                &at("gate"),
                format!("`{g}` is not one of {}", declared::GATES.join(", ")),
            );
        }
        if let Some(p) = &r.price {
            price_problems(&at("price"), p, &mut bad);
        }
        if let Some(s) = r.summary.as_deref()
            && let Err(e) = declared::check_summary(s)
        {
            bad(&at("summary"), e);
        }
        if let Some(q) = r.free_quota
            && q < 0
        {
            bad(&at("freeQuota"), format!("{q} is below 0"));
        }
    }
    problems
}

/// The rules of an `OfferPrice` at `field`: at least one field, each a decimal.
fn price_problems(field: &str, price: &OfferPrice, bad: &mut impl FnMut(&str, String)) {
    if price.is_empty() {
        bad(
            field,
            "is required: set perRequest (or perMTok, perHour, perEpoch)".into(),
        );
    }
    for (name, v) in PRICE_FIELDS.into_iter().zip([
        &price.per_request,
        &price.per_m_tok,
        &price.per_hour,
        &price.per_epoch,
    ]) {
        if let Some(v) = v.as_deref()
            && !is_decimal(v)
        {
            bad(
                &format!("{field}.{name}"),
                format!("`{v}` is not a decimal amount like 0.001"),
            );
        }
    }
}

/// `^0x[0-9a-fA-F]{40}$`.
pub fn is_address(s: &str) -> bool {
    s.len() == 42 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `^/[a-zA-Z0-9/_.-]*$`.
pub fn is_offer_path(s: &str) -> bool {
    s.starts_with('/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'))
}

/// `^/[a-zA-Z0-9/_.*-]*$`.
pub fn is_route_path(s: &str) -> bool {
    s.starts_with('/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'*' | b'-'))
}

/// `^[0-9]+(\.[0-9]+)?$`.
pub fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::types::{OfferAsset, OfferModel, OfferPrice, OfferRoute, OfferUpstream};

    fn schema(crd: &CustomResourceDefinition) -> Value {
        serde_json::to_value(crd).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            .clone()
    }

    fn at<'a>(s: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(s, |v, p| match p {
            "[]" => &v["items"],
            _ => &v["properties"][p],
        })
    }

    #[test]
    fn service_offer_crd_has_names_subresource_and_printer_columns() {
        let crd = service_offer_crd();
        assert_eq!(crd.metadata.name.as_deref(), Some("serviceoffers.obol.org"));
        assert_eq!(crd.spec.group, "obol.org");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.plural, "serviceoffers");
        assert_eq!(crd.spec.names.kind, "ServiceOffer");
        assert_eq!(crd.spec.names.short_names, Some(vec!["so".to_string()]));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v.served && v.storage);
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let cols: Vec<(&str, &str, &str)> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("Type", "string", ".spec.type"),
                ("Model", "string", ".spec.model.name"),
                ("Price", "string", ".spec.payment.price.perRequest"),
                ("Network", "string", ".spec.payment.network"),
                (
                    "Ready",
                    "string",
                    ".status.conditions[?(@.type==\"Ready\")].status"
                ),
                ("Path", "string", ".status.endpoint"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ]
        );
    }

    #[test]
    fn service_offer_schema_has_the_reference_validation() {
        let s = schema(&service_offer_crd());
        assert_eq!(at(&s, "spec")["required"], json!(["payment"]));
        assert_eq!(at(&s, "spec.payment")["required"], json!(["price"]));
        assert_eq!(
            at(&s, "spec.payment.payTo")["pattern"],
            "^0x[0-9a-fA-F]{40}$"
        );
        assert_eq!(
            at(&s, "spec.payment.asset.address")["pattern"],
            "^0x[0-9a-fA-F]{40}$"
        );
        assert_eq!(at(&s, "spec.path")["pattern"], "^/[a-zA-Z0-9/_.-]*$");
        assert_eq!(at(&s, "spec.payment.scheme")["enum"], json!(["exact"]));
        assert_eq!(at(&s, "spec.payment.scheme")["default"], "exact");
        assert_eq!(at(&s, "spec.payment.maxTimeoutSeconds")["default"], 300);
        assert_eq!(at(&s, "spec.payment.price")["minProperties"], 1);
        assert_eq!(
            at(&s, "spec.payment.price.perRequest")["pattern"],
            DECIMAL_PATTERN
        );
        assert_eq!(
            at(&s, "spec.payment.asset.transferMethod")["enum"],
            json!(["eip3009", "permit2"])
        );
        assert_eq!(
            at(&s, "spec.payment.asset.decimals")["maximum"],
            json!(255.0)
        );
        assert_eq!(
            at(&s, "spec.model.runtime")["enum"],
            json!(["ollama", "vllm", "tgi"])
        );
        assert_eq!(at(&s, "spec.upstream")["required"], json!(["service"]));
        assert_eq!(at(&s, "spec.upstream.port")["default"], 11434);
        assert_eq!(at(&s, "spec.registration.enabled")["default"], false);
        let routes = at(&s, "spec.routes");
        assert_eq!(routes["maxItems"], json!(128));
        assert_eq!(routes["items"]["required"], json!(["path"]));
        assert_eq!(
            at(&s, "spec.routes.[].path")["pattern"],
            "^/[a-zA-Z0-9/_.*-]*$"
        );
        assert_eq!(at(&s, "spec.routes.[].path")["maxLength"], json!(512));
        assert_eq!(
            at(&s, "spec.routes.[].methods.[]")["enum"],
            json!(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        );
        assert_eq!(
            at(&s, "spec.routes.[].gate")["enum"],
            json!(["paid", "free", "auth"])
        );
        assert_eq!(at(&s, "spec.routes.[].gate")["default"], "paid");
        assert_eq!(at(&s, "spec.routes.[].summary")["maxLength"], json!(300));
        assert_eq!(at(&s, "spec.routes.[].price")["minProperties"], 1);
        assert_eq!(
            at(&s, "spec.routes.[].price.perRequest")["pattern"],
            DECIMAL_PATTERN
        );
        assert_eq!(at(&s, "spec.routes.[].freeQuota")["minimum"], json!(0.0));
        let conditions = at(&s, "status.conditions");
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
        assert_eq!(
            at(&s, "status.conditions.[].status")["enum"],
            json!(["True", "False", "Unknown"])
        );
    }

    #[test]
    fn purchase_request_schema_has_the_reference_validation() {
        let crd = purchase_request_crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("purchaserequests.obol.org")
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["pr".to_string()]));
        let v = &crd.spec.versions[0];
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let cols: Vec<(&str, &str)> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str()))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("Endpoint", "string"),
                ("Model", "string"),
                ("Price", "string"),
                ("Remaining", "integer"),
                ("Spent", "integer"),
                ("Ready", "string"),
                ("Age", "date"),
            ]
        );
        let s = schema(&crd);
        assert_eq!(
            at(&s, "spec")["required"],
            json!(["endpoint", "model", "count", "payment"])
        );
        assert_eq!(at(&s, "spec.count")["minimum"], json!(1.0));
        assert_eq!(at(&s, "spec.count")["maximum"], json!(2500.0));
        assert_eq!(
            at(&s, "spec.payment")["required"],
            json!(["network", "payTo", "price", "asset"])
        );
        assert_eq!(at(&s, "spec.payment.payTo")["pattern"], ADDRESS_PATTERN);
        let refill = at(&s, "spec.autoRefill");
        for f in [
            "enabled",
            "threshold",
            "count",
            "maxTotal",
            "maxSpendPerDay",
        ] {
            assert!(refill["properties"][f].is_object(), "autoRefill.{f}");
        }
        assert_eq!(at(&s, "spec.autoRefill.maxTotal")["type"], "integer");
        assert_eq!(at(&s, "spec.autoRefill.maxSpendPerDay")["type"], "string");
        assert_eq!(
            at(&s, "spec.preSignedAuths.[].payment")["x-kubernetes-preserve-unknown-fields"],
            true
        );
        for f in [
            "observedGeneration",
            "conditions",
            "publicModel",
            "remaining",
            "spent",
            "totalSigned",
            "totalSpent",
            "probedAt",
            "probedPrice",
            "walletBalance",
            "signerAddress",
        ] {
            assert!(at(&s, "status")["properties"][f].is_object(), "status.{f}");
        }
    }

    #[test]
    fn schemas_carry_no_generated_defaults_nulls_or_open_maps() {
        fn walk(v: &Value, path: &str, allowed_defaults: &[&str]) {
            let Some(o) = v.as_object() else { return };
            if o.contains_key("default") {
                assert!(
                    allowed_defaults.contains(&path),
                    "unexpected default at {path}"
                );
            }
            assert!(!o.contains_key("nullable"), "nullable at {path}");
            assert_ne!(
                o.get("additionalProperties"),
                Some(&json!(true)),
                "additionalProperties: true at {path}"
            );
            if let Some(p) = o.get("properties").and_then(Value::as_object) {
                for (k, sub) in p {
                    walk(sub, &format!("{path}.{k}"), allowed_defaults);
                }
            }
            if let Some(items) = o.get("items") {
                walk(items, &format!("{path}[]"), allowed_defaults);
            }
        }
        walk(
            &schema(&service_offer_crd()),
            "",
            &[
                ".spec.payment.scheme",
                ".spec.payment.maxTimeoutSeconds",
                ".spec.upstream.port",
                ".spec.registration.enabled",
                ".spec.routes[].gate",
            ],
        );
        walk(
            &schema(&purchase_request_crd()),
            "",
            &[".spec.autoRefill.enabled"],
        );
    }

    fn valid_spec() -> ServiceOfferSpec {
        ServiceOfferSpec {
            offer_type: Some("http".into()),
            upstream: Some(OfferUpstream {
                service: "web".into(),
                port: Some(8080),
                ..Default::default()
            }),
            payment: crate::k8s::types::OfferPayment {
                pay_to: Some(format!("0x{}", "a".repeat(40))),
                network: Some("base-sepolia".into()),
                price: OfferPrice {
                    per_request: Some("0.001".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            path: Some("/services/web".into()),
            ..Default::default()
        }
    }

    #[test]
    fn client_side_validation_mirrors_the_schema() {
        assert_eq!(validate_offer_spec(&valid_spec()), vec![]);

        let mut s = valid_spec();
        s.payment.pay_to = Some("0x123".into());
        s.payment.price.per_request = Some("1e-3".into());
        s.path = Some("services/web".into());
        s.payment.scheme = Some("upto".into());
        s.model = Some(OfferModel {
            name: "m".into(),
            runtime: "llamacpp".into(),
        });
        s.payment.asset = Some(OfferAsset {
            transfer_method: Some("approve".into()),
            ..Default::default()
        });
        let fields: Vec<String> = validate_offer_spec(&s)
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.path",
                "spec.model.runtime",
                "spec.payment.scheme",
                "spec.payment.payTo",
                "spec.payment.asset.transferMethod",
                "spec.payment.price.perRequest",
            ]
        );

        let mut s = valid_spec();
        s.routes = vec![
            OfferRoute {
                path: "/ok/*".into(),
                methods: vec!["POST".into()],
                gate: Some("auth".into()),
                price: Some(OfferPrice {
                    per_request: Some("0.5".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            OfferRoute {
                path: "/a b".into(),
                methods: vec!["FETCH".into()],
                gate: Some("maybe".into()),
                price: Some(OfferPrice::default()),
                summary: Some("x".repeat(301)),
                free_quota: Some(-1),
            },
            OfferRoute {
                path: format!("/{}", "a".repeat(512)),
                price: Some(OfferPrice {
                    per_request: Some("-1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        let fields: Vec<String> = validate_offer_spec(&s)
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.routes[1].path",
                "spec.routes[1].methods",
                "spec.routes[1].gate",
                "spec.routes[1].price",
                "spec.routes[1].summary",
                "spec.routes[1].freeQuota",
                "spec.routes[2].path",
                "spec.routes[2].price.perRequest",
            ],
            "gate auth passes the schema (the verifier refuses to serve it)"
        );
        s.routes = vec![OfferRoute::default(); 129];
        for (i, r) in s.routes.iter_mut().enumerate() {
            r.path = format!("/r{i}");
        }
        let problems = validate_offer_spec(&s);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("129 routes"),
            "{problems:?}"
        );

        let mut s = valid_spec();
        s.payment.price = OfferPrice::default();
        let problems = validate_offer_spec(&s);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("price: is required"));
    }

    #[test]
    fn pattern_helpers() {
        assert!(is_address("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
        assert!(!is_address("0x036CbD53842c5426634e7929541eC2318f3dCF7"));
        assert!(!is_address("1x036CbD53842c5426634e7929541eC2318f3dCF7e"));
        assert!(!is_address("0x036CbD53842c5426634e7929541eC2318f3dCF7g"));
        assert!(is_offer_path("/"));
        assert!(is_offer_path("/services/a_b.c-d/v1"));
        assert!(!is_offer_path("/services/a b"));
        assert!(!is_offer_path("/services/*"));
        assert!(is_decimal("0.001") && is_decimal("10"));
        assert!(!is_decimal(".5") && !is_decimal("1.") && !is_decimal("-1") && !is_decimal(""));
    }
}

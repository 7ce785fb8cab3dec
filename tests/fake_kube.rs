//! The fake Kubernetes API server's own suite. It is driven by clients nobody here wrote:
//! kubectl (the `/usr/bin/kubectl` dispatcher, plus every versioned kubectl found beside it) and
//! kube-rs 5 (typed, dynamic, `runtime::watcher`), plus raw HTTP for the protocol details
//! (Status bodies, selectors, paging, watch framing). See docs/testing-kube.md.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use support::fake_kube::table::JsonPath;
use support::fake_kube::util::{format_rfc3339, human_duration, parse_rfc3339};
use support::fake_kube::{FakeKube, KubeTarget, Options, selectors::LabelSelector};

const SERVICEOFFER_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: serviceoffers.obol.org
spec:
  group: obol.org
  scope: Namespaced
  names:
    kind: ServiceOffer
    plural: serviceoffers
    singular: serviceoffer
    listKind: ServiceOfferList
    shortNames: [so]
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Price
      type: string
      jsonPath: .spec.payment.price.perRequest
    - name: Network
      type: string
      jsonPath: .spec.payment.network
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

fn offer_yaml(name: &str, price: &str, network: &str) -> String {
    format!(
        "apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  name: {name}
  labels:
    app: llm
spec:
  upstream: http://llm.default.svc:8080
  payment:
    network: {network}
    price:
      perRequest: \"{price}\"
"
    )
}

// ---- kubectl helpers ---------------------------------------------------------------------------

struct Out {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Out {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("kubectl runs (it is preinstalled at /usr/bin/kubectl)");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    Out {
        ok: o.status.success(),
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn kubectl(k: &FakeKube, args: &[&str]) -> Out {
    let mut c = k.kubectl();
    c.args(args);
    run(c, None)
}

/// Runs kubectl, asserting success and an empty stderr (no discovery or other warnings).
#[track_caller]
fn kubectl_ok(k: &FakeKube, args: &[&str]) -> String {
    let o = kubectl(k, args);
    assert!(
        o.ok,
        "kubectl {args:?} failed ({:?}):\n{}{}",
        o.code, o.stdout, o.stderr
    );
    assert!(
        o.stderr.is_empty(),
        "kubectl {args:?} printed to stderr:\n{}",
        o.stderr
    );
    o.stdout
}

#[track_caller]
fn kubectl_apply(k: &FakeKube, extra: &[&str], yaml: &str) -> String {
    let mut c = k.kubectl();
    c.arg("apply").args(extra).args(["-f", "-"]);
    let o = run(c, Some(yaml));
    assert!(
        o.ok,
        "kubectl apply {extra:?} failed:\n{}{}",
        o.stdout, o.stderr
    );
    assert!(
        o.stderr.is_empty(),
        "kubectl apply printed to stderr:\n{}",
        o.stderr
    );
    o.stdout
}

fn get_json(k: &FakeKube, args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&kubectl_ok(k, &a)).unwrap()
}

/// Whitespace-split rows of kubectl's table output.
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn is_age(s: &str) -> bool {
    s.ends_with('s') && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit())
}

// ---- kubectl ---------------------------------------------------------------------------------

#[test]
fn kubectl_crd_and_custom_resource_lifecycle() {
    let k = FakeKube::start();
    assert!(
        kubectl_apply(&k, &[], SERVICEOFFER_CRD).contains(
            "customresourcedefinition.apiextensions.k8s.io/serviceoffers.obol.org created"
        )
    );
    kubectl_ok(
        &k,
        &[
            "wait",
            "--for",
            "condition=Established",
            "--timeout=10s",
            "crd/serviceoffers.obol.org",
        ],
    );
    assert!(
        kubectl_apply(&k, &[], &offer_yaml("x", "0.001", "base-sepolia"))
            .contains("serviceoffer.obol.org/x created")
    );

    let so = get_json(&k, &["so", "x"]);
    assert_eq!(so["apiVersion"], "obol.org/v1alpha1");
    assert_eq!(so["kind"], "ServiceOffer");
    assert_eq!(
        so["metadata"]["namespace"], "default",
        "namespace defaults from the kubeconfig context"
    );
    assert_eq!(so["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(parse_rfc3339(so["metadata"]["creationTimestamp"].as_str().unwrap()).is_some());
    assert_eq!(so["metadata"]["generation"], 1);
    assert!(
        so["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    assert_eq!(so["spec"]["payment"]["price"]["perRequest"], "0.001");
    let rv1: u64 = so["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Table output with the CRD's printer columns.
    let t = table(&kubectl_ok(&k, &["get", "so"]));
    assert_eq!(t[0], ["NAME", "PRICE", "NETWORK", "AGE"]);
    assert_eq!(t[1][..3], ["x", "0.001", "base-sepolia"]);
    assert!(is_age(&t[1][3]), "age {:?}", t[1][3]);
    let t = table(&kubectl_ok(&k, &["get", "serviceoffers", "-A"]));
    assert_eq!(t[0], ["NAMESPACE", "NAME", "PRICE", "NETWORK", "AGE"]);
    assert_eq!(t[1][..4], ["default", "x", "0.001", "base-sepolia"]);
    let t = table(&kubectl_ok(&k, &["get", "so", "--show-labels"]));
    assert_eq!(t[1].last().unwrap(), "app=llm");

    // Client-side apply again with a changed price: a 3-way JSON merge patch for a CR.
    assert!(
        kubectl_apply(&k, &[], &offer_yaml("x", "0.002", "base-sepolia")).contains("configured")
    );
    assert!(
        kubectl_apply(&k, &[], &offer_yaml("x", "0.002", "base-sepolia")).contains("unchanged")
    );

    assert!(kubectl_ok(&k, &["annotate", "so", "x", "obol.org/paused=true"]).contains("annotated"));
    kubectl_ok(
        &k,
        &[
            "patch",
            "so",
            "x",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"payment":{"network":"base"}}}"#,
        ],
    );
    kubectl_ok(
        &k,
        &[
            "patch",
            "so",
            "x",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/upstream","value":"http://other:9000"},{"op":"add","path":"/spec/replicas","value":2}]"#,
        ],
    );
    assert!(kubectl_ok(&k, &["label", "so", "x", "tier=gold"]).contains("labeled"));

    let so = get_json(&k, &["so", "x", "--show-managed-fields"]);
    assert_eq!(so["metadata"]["annotations"]["obol.org/paused"], "true");
    assert_eq!(
        so["metadata"]["labels"],
        json!({"app": "llm", "tier": "gold"})
    );
    assert_eq!(
        so["spec"]["payment"],
        json!({"network": "base", "price": {"perRequest": "0.002"}})
    );
    assert_eq!(so["spec"]["upstream"], "http://other:9000");
    assert_eq!(so["spec"]["replicas"], 2);
    // apply, merge patch and JSON patch changed the spec; annotate and label did not.
    assert_eq!(so["metadata"]["generation"], 4);
    let rv2: u64 = so["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    let managers: Vec<&str> = so["metadata"]["managedFields"]
        .as_array()
        .map(|a| a.iter().map(|m| m["manager"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert!(
        managers.contains(&"kubectl-client-side-apply") && managers.contains(&"kubectl-annotate"),
        "{managers:?}"
    );

    // Label selectors through kubectl.
    assert_eq!(
        table(&kubectl_ok(
            &k,
            &["get", "so", "-l", "tier in (gold,silver)", "-o", "name"]
        ))[0],
        ["serviceoffer.obol.org/x"]
    );
    assert!(
        kubectl(&k, &["get", "so", "-l", "tier!=gold", "-o", "name"])
            .stdout
            .is_empty()
    );

    let deleted = kubectl_ok(&k, &["delete", "so", "x"]);
    assert!(
        deleted.contains("serviceoffer.obol.org \"x\" deleted"),
        "{deleted}"
    );

    let o = kubectl(&k, &["get", "so", "nonexistent"]);
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains("NotFound")
            && o.stderr
                .contains("serviceoffers.obol.org \"nonexistent\" not found"),
        "{}",
        o.stderr
    );
    let o = kubectl(&k, &["get", "so", "x"]);
    assert_eq!(o.code, Some(1));

    // kubectl's view of the requests: CR writes were merge patches, never strategic ones.
    let patches: Vec<String> = k
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/serviceoffers/"))
        .map(|r| r.content_type.clone().unwrap_or_default())
        .collect();
    assert!(
        patches
            .iter()
            .any(|c| c.starts_with("application/merge-patch+json"))
    );
    assert!(
        patches
            .iter()
            .any(|c| c.starts_with("application/json-patch+json"))
    );
    assert!(!patches.iter().any(|c| c.contains("strategic")));
}

#[test]
fn kubectl_secret_string_data_becomes_base64_data() {
    let k = FakeKube::start();
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tok\n  namespace: obol\nstringData:\n  token: s3cret\n";
    assert!(kubectl_apply(&k, &[], yaml).contains("secret/tok created"));
    assert_eq!(
        kubectl_ok(
            &k,
            &[
                "-n",
                "obol",
                "get",
                "secret",
                "tok",
                "-o",
                "jsonpath={.data.token}"
            ]
        ),
        "czNjcmV0"
    );
    let s = get_json(&k, &["-n", "obol", "secret", "tok"]);
    assert!(s.get("stringData").is_none(), "stringData is write-only");
    assert_eq!(s["type"], "Opaque");
    let t = table(&kubectl_ok(&k, &["-n", "obol", "get", "secrets"]));
    assert_eq!(t[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(t[1][..3], ["tok", "Opaque", "1"]);
    // The namespace came into being with the Secret.
    assert_eq!(
        table(&kubectl_ok(&k, &["get", "ns", "obol", "--no-headers"]))[0][..2],
        ["obol", "Active"]
    );
}

#[test]
fn kubectl_server_side_apply_twice_and_conflicts() {
    let k = FakeKube::start();
    kubectl_apply(&k, &["--server-side"], SERVICEOFFER_CRD);
    let v1 = "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: s\n  labels: {a: \"1\", b: \"2\"}\nspec:\n  payment: {network: base, price: {perRequest: \"1\"}}\n";
    let v2 = "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata:\n  name: s\n  labels: {a: \"1\"}\nspec:\n  payment: {network: base, price: {perRequest: \"2\"}}\n";
    assert!(kubectl_apply(&k, &["--server-side"], v1).contains("serverside-applied"));
    assert!(kubectl_apply(&k, &["--server-side"], v2).contains("serverside-applied"));
    let so = get_json(&k, &["so", "s", "--show-managed-fields"]);
    assert_eq!(so["spec"]["payment"]["price"]["perRequest"], "2");
    assert_eq!(
        so["metadata"]["labels"],
        json!({"a": "1"}),
        "a field the manager stopped applying is removed"
    );
    let mf = &so["metadata"]["managedFields"];
    assert_eq!(mf.as_array().unwrap().len(), 1);
    assert_eq!(mf[0]["manager"], "kubectl");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(
        mf[0]["fieldsV1"]["f:spec"]["f:payment"]["f:price"]["f:perRequest"],
        json!({})
    );

    // Another manager takes a field; kubectl's next apply conflicts unless forced.
    kubectl_ok(
        &k,
        &[
            "patch",
            "so",
            "s",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"payment":{"network":"eth"}}}"#,
            "--field-manager",
            "obol",
        ],
    );
    let mut c = k.kubectl();
    c.args(["apply", "--server-side", "-f", "-"]);
    let o = run(c, Some(v2));
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains(r#"conflict with "obol""#) && o.stderr.contains(".spec.payment.network"),
        "{}",
        o.stderr
    );
    assert!(
        kubectl_apply(&k, &["--server-side", "--force-conflicts"], v2)
            .contains("serverside-applied")
    );
    assert_eq!(
        get_json(&k, &["so", "s"])["spec"]["payment"]["network"],
        "base"
    );
    let applies: Vec<_> = k
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "PATCH" && r.content_type.as_deref() == Some("application/apply-patch+yaml")
        })
        .collect();
    assert_eq!(
        applies.last().unwrap().param("force").as_deref(),
        Some("true")
    );
    assert_eq!(
        applies.last().unwrap().param("fieldManager").as_deref(),
        Some("kubectl")
    );
}

#[test]
fn kubectl_deployment_apply_uses_strategic_merge() {
    let k = FakeKube::start();
    let dep = |image: &str| {
        format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: verifier
  namespace: x402
spec:
  replicas: 2
  selector:
    matchLabels: {{app: verifier}}
  template:
    metadata:
      labels: {{app: verifier}}
    spec:
      containers:
      - name: verifier
        image: {image}
        ports:
        - containerPort: 8080
        env:
        - {{name: RUST_LOG, value: info}}
"
        )
    };
    assert!(kubectl_apply(&k, &[], &dep("obol:1")).contains("deployment.apps/verifier created"));
    // A sidecar added by someone else survives the next client-side apply (merge by name).
    kubectl_ok(
        &k,
        &[
            "-n",
            "x402",
            "patch",
            "deploy",
            "verifier",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
        ],
    );
    assert!(kubectl_apply(&k, &[], &dep("obol:2")).contains("configured"));
    let d = get_json(&k, &["-n", "x402", "deploy", "verifier"]);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert_eq!(containers[0]["image"], "obol:2");
    assert_eq!(containers[0]["env"][0]["value"], "info");
    assert_eq!(containers[0]["ports"][0]["containerPort"], 8080);
    assert_eq!(containers[1]["name"], "sidecar");
    assert_eq!(d["metadata"]["generation"], 3);
    let t = table(&kubectl_ok(&k, &["-n", "x402", "get", "deploy"]));
    assert_eq!(t[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(t[1][..4], ["verifier", "0/2", "0", "0"]);
    // kubectl scale goes through the scale subresource.
    assert!(
        kubectl_ok(
            &k,
            &["-n", "x402", "scale", "deploy", "verifier", "--replicas=0"]
        )
        .contains("scaled")
    );
    assert_eq!(
        kubectl_ok(
            &k,
            &[
                "-n",
                "x402",
                "get",
                "deploy",
                "verifier",
                "-o",
                "jsonpath={.spec.replicas}"
            ]
        ),
        "0"
    );
    let scale: Value = serde_json::from_str(&kubectl_ok(
        &k,
        &[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/x402/deployments/verifier/scale",
        ],
    ))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["status"]["selector"], "app=verifier");
    assert!(
        k.requests().iter().any(|r| r.method == "PATCH"
            && r.content_type.as_deref() == Some("application/strategic-merge-patch+json")),
        "kubectl sends strategic merge patches for built-in kinds"
    );
}

#[test]
fn kubectl_discovery_without_aggregated_discovery() {
    let k = FakeKube::start_with(Options {
        aggregated_discovery: false,
        ..Options::default()
    });
    kubectl_apply(&k, &[], SERVICEOFFER_CRD);
    kubectl_apply(&k, &[], &offer_yaml("legacy", "5", "base"));
    assert_eq!(
        table(&kubectl_ok(&k, &["get", "so", "--no-headers"]))[0][..3],
        ["legacy", "5", "base"]
    );
    let paths: Vec<String> = k.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/apis/obol.org/v1alpha1"),
        "legacy per-group discovery used: {paths:?}"
    );
    assert!(paths.iter().any(|p| p == "/api/v1"));
}

#[test]
fn kubectl_api_resources_lists_crd_resources_only_once_registered() {
    let k = FakeKube::start();
    let before = kubectl_ok(&k, &["api-resources", "--no-headers"]);
    assert!(
        before.contains("secrets")
            && before.contains("deployments")
            && before.contains("customresourcedefinitions")
    );
    assert!(!before.contains("servicemonitors") && !before.contains("serviceoffers"));
    let monitoring = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList, shortNames: [smon], categories: [prometheus-operator]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";
    kubectl_apply(&k, &[], monitoring);
    let after = kubectl_ok(
        &k,
        &[
            "api-resources",
            "--api-group",
            "monitoring.coreos.com",
            "--no-headers",
        ],
    );
    assert_eq!(
        table(&after)[0],
        [
            "servicemonitors",
            "smon",
            "monitoring.coreos.com/v1",
            "true",
            "ServiceMonitor"
        ]
    );
    kubectl_apply(
        &k,
        &[],
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: verifier}\nspec: {endpoints: [{port: metrics}]}\n",
    );
    // No printer columns declared: Name and Age.
    let t = table(&kubectl_ok(&k, &["get", "smon"]));
    assert_eq!(t[0], ["NAME", "AGE"]);
    kubectl_ok(
        &k,
        &["delete", "crd", "servicemonitors.monitoring.coreos.com"],
    );
    let gone = kubectl(&k, &["get", "servicemonitors.monitoring.coreos.com"]);
    assert!(!gone.ok, "resource type is gone with its CRD");
    assert!(
        k.objects("monitoring.coreos.com", "servicemonitors")
            .is_empty()
    );
}

/// Every versioned kubectl the dispatcher ships (kubectl.1.29 … 1.33 here) gets, applies,
/// patches and deletes without a warning. 1.27/1.28 need OpenAPI v2 in protobuf for `apply`
/// validation, which the fake does not serve (they work with `--validate=false`).
#[test]
fn kubectl_versions_matrix() {
    let dir = std::path::Path::new("/usr/lib/google-cloud-sdk/bin");
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let minor: u32 = name.strip_prefix("kubectl.1.")?.parse().ok()?;
                    Some((minor, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    let k = FakeKube::start();
    kubectl_apply(&k, &[], SERVICEOFFER_CRD);
    let mut tested = Vec::new();
    for (minor, bin) in versions {
        let cache = tempfile::tempdir().unwrap();
        let cmd = |args: &[&str], stdin: Option<&str>| {
            let mut c = Command::new(&bin);
            c.env_remove("KUBECONFIG")
                .arg("--kubeconfig")
                .arg(k.kubeconfig_path())
                .arg("--cache-dir")
                .arg(cache.path())
                .args(args);
            if minor < 29 && args[0] == "apply" {
                c.arg("--validate=false");
            }
            run(c, stdin)
        };
        let name = format!("v{minor}");
        for (args, stdin) in [
            (
                vec!["apply", "-f", "-"],
                Some(offer_yaml(&name, "1", "base")),
            ),
            (
                vec!["apply", "-f", "-"],
                Some(offer_yaml(&name, "2", "base")),
            ),
            (vec!["get", "so", &name], None),
            (
                vec![
                    "patch",
                    "so",
                    &name,
                    "--type",
                    "merge",
                    "-p",
                    r#"{"spec":{"x":1}}"#,
                ],
                None,
            ),
            (
                vec!["apply", "--server-side", "--force-conflicts", "-f", "-"],
                Some(offer_yaml(&name, "3", "base")),
            ),
            (vec!["delete", "so", &name], None),
        ] {
            let o = cmd(&args, stdin.as_deref());
            assert!(
                o.ok && o.stderr.is_empty(),
                "kubectl 1.{minor} {args:?}: {}{}",
                o.stdout,
                o.stderr
            );
        }
        tested.push(minor);
    }
    eprintln!("kubectl minors tested: {tested:?}");
}

// ---- kube-rs -----------------------------------------------------------------------------------

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn offers(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "obol.org",
        "v1alpha1",
        "ServiceOffer",
    ));
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn install_crd(client: &kube::Client) {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    let crd: Value = serde_yaml_ng::from_str(SERVICEOFFER_CRD).unwrap();
    crds.patch(
        "serviceoffers.obol.org",
        &PatchParams::apply("obol-test"),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
}

fn offer(name: &str, labels: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "obol.org/v1alpha1",
        "kind": "ServiceOffer",
        "metadata": { "name": name, "labels": labels },
        "spec": { "payment": { "network": "base", "price": { "perRequest": "0.01" } } },
    }))
    .unwrap()
}

#[tokio::test]
async fn kube_rs_secret_crud_apply_and_errors() {
    let k = FakeKube::start();
    let client = k.client_from_kubeconfig().await;
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        "v1.33.0-fake"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "obol");

    let s: Secret = serde_json::from_value(json!({
        "metadata": { "name": "rpc", "labels": { "app": "erpc" } },
        "stringData": { "token": "abc" },
    }))
    .unwrap();
    let created = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(created.data.as_ref().unwrap()["token"].0, b"abc");
    assert!(created.string_data.is_none());
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    assert_eq!(
        api_error(
            secrets
                .create(&PostParams::default(), &s)
                .await
                .unwrap_err()
        ),
        (409, "AlreadyExists".into())
    );

    // Server-side apply with data (what obol writes), forced.
    let applied: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "rpc" },
        "type": "Opaque",
        "data": { "token": "eHl6" },
    }))
    .unwrap();
    let pp = PatchParams::apply("obol").force();
    let after = secrets
        .patch("rpc", &pp, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(after.data.as_ref().unwrap()["token"].0, b"xyz");
    assert_eq!(
        after.metadata.labels.as_ref().unwrap()["app"],
        "erpc",
        "fields not in the apply stay"
    );
    let mf = after.metadata.managed_fields.unwrap();
    assert!(
        mf.iter().any(
            |m| m.manager.as_deref() == Some("obol") && m.operation.as_deref() == Some("Apply")
        )
    );
    let req = k
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        req.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(req.param("fieldManager").as_deref(), Some("obol"));

    // SSA creates a missing object.
    let other: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new"}, "data": {"k": "dg=="}})).unwrap();
    secrets
        .patch("new", &PatchParams::apply("obol"), &Patch::Apply(&other))
        .await
        .unwrap();

    let listed = secrets
        .list(&ListParams::default().labels("app=erpc"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    assert_eq!(
        secrets
            .list(&ListParams::default().labels("app notin (erpc)"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        secrets
            .list(&ListParams::default().fields("metadata.name=new"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let gone = secrets
        .delete("rpc", &DeleteParams::default())
        .await
        .unwrap();
    assert!(gone.is_right(), "immediate delete answers a Success Status");
    assert_eq!(
        api_error(secrets.get("rpc").await.unwrap_err()),
        (404, "NotFound".into())
    );
    assert_eq!(
        api_error(
            secrets
                .delete("rpc", &DeleteParams::default())
                .await
                .unwrap_err()
        )
        .0,
        404
    );
}

#[tokio::test]
async fn kube_rs_stale_replace_conflicts() {
    let k = FakeKube::start();
    let cms: Api<ConfigMap> = Api::namespaced(k.client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    let v1 = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut v2 = v1.clone();
    v2.data.as_mut().unwrap().insert("a".into(), "2".into());
    let stored = cms.replace("c", &PostParams::default(), &v2).await.unwrap();
    assert_ne!(
        stored.metadata.resource_version,
        v1.metadata.resource_version
    );
    let mut stale = v1.clone();
    stale.data.as_mut().unwrap().insert("a".into(), "3".into());
    assert_eq!(
        api_error(
            cms.replace("c", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        (409, "Conflict".into())
    );
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["a"], "2");
}

#[tokio::test]
async fn kube_rs_apply_conflict_between_managers() {
    let k = FakeKube::start();
    let cms: Api<ConfigMap> = Api::namespaced(k.client(), "default");
    let cfg = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"price": v}});
    cms.patch(
        "shared",
        &PatchParams::apply("alice"),
        &Patch::Apply(cfg("1")),
    )
    .await
    .unwrap();
    // Same value: shared ownership, no conflict.
    cms.patch(
        "shared",
        &PatchParams::apply("bob"),
        &Patch::Apply(cfg("1")),
    )
    .await
    .unwrap();
    let err = cms
        .patch(
            "shared",
            &PatchParams::apply("carol"),
            &Patch::Apply(cfg("2")),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error expected")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains(r#"conflict with "alice""#)
            && status.message.contains(".data.price"),
        "{}",
        status.message
    );
    let forced = cms
        .patch(
            "shared",
            &PatchParams::apply("carol").force(),
            &Patch::Apply(cfg("2")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["price"], "2");
    let owners: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(
        owners,
        ["carol"],
        "forcing took the field from alice and bob"
    );
}

#[tokio::test]
async fn kube_rs_dynamic_crd_status_subresource_and_generation() {
    let k = FakeKube::start();
    let client = k.client();
    install_crd(&client).await;
    let api = offers(&client, "default");
    let mut o = offer("a", json!({"app": "a"}));
    o.data["status"] = json!({"phase": "Ignored"});
    let created = api.create(&PostParams::default(), &o).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create with a status subresource"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let st = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"ignored": true}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert!(
        st.data["spec"].get("ignored").is_none(),
        "/status writes only .status"
    );
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status changes do not bump generation"
    );

    let m = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Hacked"}, "metadata": {"annotations": {"x": "y"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        m.data["status"]["phase"], "Ready",
        "main-resource writes ignore .status"
    );
    assert_eq!(
        m.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );
    let s = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"payment": {"network": "base-sepolia"}}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(2));
    // Server-side apply through /status owns only status fields (forced: the merge patch above
    // made another manager own .status.phase, a conflict otherwise).
    let status_cfg = json!({
        "apiVersion": "obol.org/v1alpha1", "kind": "ServiceOffer",
        "metadata": {"name": "a"},
        "status": {"phase": "Serving", "url": "http://a"},
    });
    let st = api
        .patch_status(
            "a",
            &PatchParams::apply("obol-controller").force(),
            &Patch::Apply(&status_cfg),
        )
        .await
        .unwrap();
    assert_eq!(
        st.data["status"],
        json!({"phase": "Serving", "url": "http://a"})
    );
    assert_eq!(st.metadata.generation, Some(2));
    let entry = st
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("obol-controller"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let all = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "obol.org",
            "v1alpha1",
            "ServiceOffer",
        )),
    );
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

/// Next watcher event that is not part of the initial list, within 10 s.
async fn next_change<S>(stream: &mut S) -> watcher::Event<DynamicObject>
where
    S: futures_util::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Unpin,
{
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watcher event within 10 s")
            .expect("stream open")
            .expect("no watcher error");
        match ev {
            watcher::Event::Init | watcher::Event::InitDone | watcher::Event::InitApply(_) => {
                continue;
            }
            e => return e,
        }
    }
}

fn describe(ev: &watcher::Event<DynamicObject>) -> (String, String) {
    match ev {
        watcher::Event::Apply(o) => ("Apply".into(), o.metadata.name.clone().unwrap()),
        watcher::Event::Delete(o) => ("Delete".into(), o.metadata.name.clone().unwrap()),
        other => (format!("{other:?}"), String::new()),
    }
}

async fn wait_init_done<S>(stream: &mut S)
where
    S: futures_util::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Unpin,
{
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("init")
            .expect("open")
            .expect("ok");
        if matches!(ev, watcher::Event::InitDone) {
            return;
        }
    }
}

fn serviceoffer_watches(k: &FakeKube) -> Vec<support::fake_kube::RequestRecord> {
    k.requests()
        .into_iter()
        .filter(|r| {
            r.path.ends_with("/serviceoffers") && r.param("watch").as_deref() == Some("true")
        })
        .collect()
}

/// Waits until the watcher has opened its `n`th watch (the server closed the previous one).
async fn wait_for_rewatch(k: &FakeKube, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while serviceoffer_watches(k).len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "watcher did not re-watch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kube_rs_watcher_follows_changes_across_server_timeouts() {
    let k = FakeKube::start();
    let client = k.client();
    install_crd(&client).await;
    let api = offers(&client, "default");
    // The server ends each watch after 1 s; the watcher must resume from its last resourceVersion.
    // A task keeps polling it (a watcher only re-watches while polled), forwarding events.
    let mut inner = watcher(api.clone(), watcher::Config::default().timeout(1))
        .default_backoff()
        .boxed();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = inner.next().await {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    let mut stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
        )
        .boxed();
    wait_init_done(&mut stream).await;

    api.create(&PostParams::default(), &offer("w", json!({"app": "w"})))
        .await
        .unwrap();
    let ev = next_change(&mut stream).await;
    assert_eq!(describe(&ev), ("Apply".into(), "w".into()));

    wait_for_rewatch(&k, 2).await;
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"obol.org/paused": "true"}}})),
    )
    .await
    .unwrap();
    let ev = next_change(&mut stream).await;
    let watcher::Event::Apply(o) = &ev else {
        panic!("expected Apply, got {ev:?}")
    };
    assert_eq!(
        o.metadata.annotations.as_ref().unwrap()["obol.org/paused"],
        "true"
    );

    wait_for_rewatch(&k, 3).await;
    api.delete("w", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        describe(&next_change(&mut stream).await),
        ("Delete".into(), "w".into())
    );

    let watches = serviceoffer_watches(&k);
    assert!(
        watches.len() >= 3,
        "the watcher reconnected after server timeouts: {}",
        watches.len()
    );
    assert!(watches.iter().all(|w| {
        w.param("resourceVersion")
            .is_some_and(|rv| rv != "0" && !rv.is_empty())
    }));
    assert!(
        watches
            .iter()
            .all(|w| w.param("timeoutSeconds").as_deref() == Some("1"))
    );
}

#[tokio::test]
async fn kube_rs_label_selected_watcher_sees_only_matches() {
    let k = FakeKube::start();
    let client = k.client();
    install_crd(&client).await;
    let api = offers(&client, "default");
    api.create(&PostParams::default(), &offer("pre", json!({"app": "a"})))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default().labels("app=a"))
        .default_backoff()
        .boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["pre"]);
    api.create(&PostParams::default(), &offer("b", json!({"app": "b"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &offer("a", json!({"app": "a"})))
        .await
        .unwrap();
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "a"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "pre",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "c"}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next_change(&mut stream).await));
    }
    assert_eq!(
        seen,
        [
            ("Apply".into(), "a".into()),
            ("Apply".into(), "b".into()),
            ("Delete".into(), "pre".into())
        ],
        "b appears only once relabelled; pre leaves when relabelled away"
    );
}

#[tokio::test]
async fn kube_rs_streaming_list_watcher() {
    let k = FakeKube::start();
    let client = k.client();
    install_crd(&client).await;
    let api = offers(&client, "default");
    api.create(&PostParams::default(), &offer("s1", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["s1"]);
    api.create(&PostParams::default(), &offer("s2", json!({})))
        .await
        .unwrap();
    assert_eq!(
        describe(&next_change(&mut stream).await),
        ("Apply".into(), "s2".into())
    );
    let w = k
        .requests()
        .into_iter()
        .find(|r| r.param("sendInitialEvents").is_some())
        .unwrap();
    assert_eq!(
        w.param("resourceVersionMatch").as_deref(),
        Some("NotOlderThan")
    );
}

#[tokio::test]
async fn kube_rs_watcher_relists_after_expired_resource_version() {
    let k = FakeKube::start_with(Options {
        history_limit: 3,
        ..Options::default()
    });
    let client = k.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let stale_rv = k.resource_version();
    for i in 0..6 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut events = cms
        .watch(
            &kube::api::WatchParams::default().timeout(2),
            &stale_rv.to_string(),
        )
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(kube::api::WatchEvent::Error(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // A watcher lists first, so it is unaffected.
    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut n = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(_) => n += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(n, 6);
}

#[tokio::test]
async fn kube_rs_owner_reference_cascade_and_orphan() {
    let k = FakeKube::start();
    let client = k.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let owned_by = |o: &ConfigMap| json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid}]);

    let parent = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "parent"}})).unwrap(),
        )
        .await
        .unwrap();
    let child = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "child", "ownerReferences": owned_by(&parent)}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "grandchild", "ownerReferences": owned_by(&child)}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "unrelated"}})).unwrap(),
        )
        .await
        .unwrap();
    cms.delete("parent", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(cms.get("child").await.unwrap_err()).0, 404);
    assert_eq!(
        api_error(secrets.get("grandchild").await.unwrap_err()).0,
        404
    );
    secrets.get("unrelated").await.unwrap();

    let p2 = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "p2"}})).unwrap(),
        )
        .await
        .unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "c2", "ownerReferences": owned_by(&p2)}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    cms.delete("p2", &dp).await.unwrap();
    let orphan = cms.get("c2").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .is_none_or(|r| r.is_empty())
    );
}

#[tokio::test]
async fn kube_rs_finalizers_delay_deletion() {
    let k = FakeKube::start();
    let client = k.client();
    install_crd(&client).await;
    let api = offers(&client, "default");
    let mut o = offer("f", json!({}));
    o.metadata.finalizers = Some(vec!["obol.org/cleanup".into()]);
    api.create(&PostParams::default(), &o).await.unwrap();
    let pending = api.delete("f", &DeleteParams::default()).await.unwrap();
    let left = pending
        .left()
        .expect("object still there while a finalizer is pending");
    assert!(left.metadata.deletion_timestamp.is_some());
    assert!(
        api.get("f")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(api.get("f").await.unwrap_err()).0, 404);
}

/// `kubectl create <kind>` uses kubectl's typed clients, which send protobuf bodies.
#[test]
fn kubectl_create_commands_with_protobuf_bodies() {
    let k = FakeKube::start();
    kubectl_ok(&k, &["create", "namespace", "obol"]);
    kubectl_ok(
        &k,
        &[
            "-n",
            "obol",
            "create",
            "secret",
            "generic",
            "wallet",
            "--from-literal=key=0xabc",
            "--type=obol.org/wallet",
        ],
    );
    kubectl_ok(
        &k,
        &[
            "-n",
            "obol",
            "create",
            "configmap",
            "cfg",
            "--from-literal=network=base",
        ],
    );
    kubectl_ok(&k, &["-n", "obol", "create", "serviceaccount", "verifier"]);
    kubectl_ok(
        &k,
        &[
            "-n",
            "obol",
            "create",
            "role",
            "read-secrets",
            "--verb=get,list",
            "--resource=secrets",
        ],
    );
    kubectl_ok(
        &k,
        &[
            "-n",
            "obol",
            "create",
            "rolebinding",
            "verifier",
            "--role=read-secrets",
            "--serviceaccount=obol:verifier",
        ],
    );
    kubectl_ok(
        &k,
        &[
            "create",
            "clusterrole",
            "obol-read",
            "--verb=get",
            "--resource=pods",
        ],
    );
    assert_eq!(
        kubectl_ok(&k, &["-n", "obol", "auth", "can-i", "get", "secrets"]).trim(),
        "yes"
    );

    let ns = k.object("", "namespaces", None, "obol").unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "obol"
    );
    let s = k.object("", "secrets", Some("obol"), "wallet").unwrap();
    assert_eq!(s["data"]["key"], "MHhhYmM=");
    assert_eq!(s["type"], "obol.org/wallet");
    assert!(s["metadata"].get("generateName").is_none());
    assert_eq!(
        k.object("", "configmaps", Some("obol"), "cfg").unwrap()["data"]["network"],
        "base"
    );
    let rb = k
        .object(
            "rbac.authorization.k8s.io",
            "rolebindings",
            Some("obol"),
            "verifier",
        )
        .unwrap();
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"})
    );
    assert_eq!(
        rb["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "verifier", "namespace": "obol"})
    );
    let role = k
        .object(
            "rbac.authorization.k8s.io",
            "roles",
            Some("obol"),
            "read-secrets",
        )
        .unwrap();
    assert_eq!(
        role["rules"][0],
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]})
    );
    assert!(
        k.requests()
            .iter()
            .any(|r| r.content_type.as_deref() == Some("application/vnd.kubernetes.protobuf"))
    );
    let o = kubectl(&k, &["create", "deployment", "d", "--image=nginx"]);
    assert!(
        !o.ok && o.stderr.contains("not supported"),
        "deployments are not decoded from protobuf: {}",
        o.stderr
    );
}

#[tokio::test]
async fn kube_rs_discovery_legacy_and_aggregated() {
    let k = FakeKube::start();
    let client = k.client();
    install_crd(&client).await;
    let gvk = GroupVersionKind::gvk("obol.org", "v1alpha1", "ServiceOffer");
    for d in [
        kube::Discovery::new(client.clone()).run().await.unwrap(),
        kube::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let (ar, caps) = d.resolve_gvk(&gvk).expect("ServiceOffer discovered");
        assert_eq!(ar.plural, "serviceoffers");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            caps.subresources.iter().any(|(s, _)| s.plural == "status"),
            "{:?}",
            caps.subresources
        );
        let (deploy, caps) = d
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .unwrap();
        assert_eq!(deploy.plural, "deployments");
        assert!(caps.subresources.iter().any(|(s, _)| s.plural == "scale"));
        assert!(
            d.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Secret"))
                .is_some()
        );
    }
}

#[test]
fn seeding_with_fake_apply() {
    let k = FakeKube::start();
    let seeded = k.apply(&format!(
        "{SERVICEOFFER_CRD}---\n{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: obol}}\nstringData: {{k: v}}\n",
        offer_yaml("seeded", "0.3", "base")
    ));
    assert_eq!(seeded.len(), 3);
    assert_eq!(
        k.object("", "secrets", Some("obol"), "s").unwrap()["data"]["k"],
        "dg=="
    );
    let t = table(&kubectl_ok(&k, &["get", "so", "seeded", "--no-headers"]));
    assert_eq!(t[0][..3], ["seeded", "0.3", "base"]);
}

// ---- raw HTTP ------------------------------------------------------------------------------------

struct Http {
    base: String,
    c: reqwest::blocking::Client,
}

impl Http {
    fn new(k: &FakeKube) -> Self {
        Http {
            base: k.url().to_string(),
            c: reqwest::blocking::Client::new(),
        }
    }

    fn send(&self, method: &str, path: &str, ct: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let mut r = self
            .c
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(ct) = ct {
            r = r.header("Content-Type", ct);
        }
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().unwrap();
        let code = resp.status().as_u16();
        let text = resp.text().unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, None)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            "POST",
            path,
            Some("application/json"),
            Some(&body.to_string()),
        )
    }

    fn names(&self, path: &str) -> Vec<String> {
        let (code, v) = self.get(path);
        assert_eq!(code, 200, "{path}: {v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }
}

fn assert_status(v: &Value, code: u16, reason: &str) {
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn http_status_bodies() {
    let k = FakeKube::start();
    let h = Http::new(&k);
    let (c, v) = h.get("/api/v1/namespaces/default/secrets/nope");
    assert_eq!(c, 404);
    assert_status(&v, 404, "NotFound");
    assert_eq!(v["details"], json!({"name": "nope", "kind": "secrets"}));

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"a": "1"}});
    assert_eq!(
        h.post("/api/v1/namespaces/default/configmaps", cm.clone())
            .0,
        201
    );
    let (c, v) = h.post("/api/v1/namespaces/default/configmaps", cm.clone());
    assert_eq!(c, 409);
    assert_status(&v, 409, "AlreadyExists");
    assert_eq!(v["details"]["name"], "one");

    let (c, v) = h.send("PUT", "/api/v1/namespaces/default/configmaps/one", Some("application/json"), Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one", "resourceVersion": "1"}}).to_string()));
    assert_eq!(c, 409);
    assert_status(&v, 409, "Conflict");

    let (c, v) = h.post(
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "Not_Valid"}}),
    );
    assert_eq!(c, 422);
    assert_status(&v, 422, "Invalid");
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name");

    let (c, v) = h.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("application/json"),
        Some("{not json"),
    );
    assert_eq!(c, 400);
    assert_status(&v, 400, "BadRequest");

    let (c, v) = h.post(
        "/api/v1/namespaces/other/configmaps",
        json!({"metadata": {"name": "x", "namespace": "default"}}),
    );
    assert_eq!(c, 400, "{v}");

    let (c, v) = h.send(
        "POST",
        "/api/v1/namespaces/default/secrets",
        Some("application/json"),
        Some(r#"{"metadata":{"name":"bad"},"data":{"k":"%%%"}}"#),
    );
    assert_eq!(c, 400, "{v}");

    let (c, v) = h.get("/apis/obol.org/v1alpha1/namespaces/default/serviceoffers");
    assert_eq!(c, 404, "no CRD yet");
    assert_status(&v, 404, "NotFound");

    let (c, v) = h.send(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/one/status",
        None,
        None,
    );
    assert_eq!(c, 404, "configmaps have no status subresource: {v}");
    let (c, v) = h.send(
        "PUT",
        "/api/v1/namespaces/default/configmaps",
        Some("application/json"),
        Some("{}"),
    );
    assert_eq!(c, 405);
    assert_status(&v, 405, "MethodNotAllowed");

    let (c, v) = h.send(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/one",
        Some("application/json-patch+json"),
        Some(r#"[{"op":"test","path":"/data/a","value":"2"}]"#),
    );
    assert_eq!(c, 422, "{v}");
    let (c, _) = h.send("PATCH", "/api/v1/namespaces/default/configmaps/one", Some("application/json-patch+json"), Some(r#"[{"op":"test","path":"/data/a","value":"1"},{"op":"add","path":"/data/b","value":"2"},{"op":"remove","path":"/data/a"}]"#));
    assert_eq!(c, 200);
    assert_eq!(
        k.object("", "configmaps", Some("default"), "one").unwrap()["data"],
        json!({"b": "2"})
    );
    let (c, v) = h.send(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/one",
        Some("application/apply-patch+yaml"),
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n"),
    );
    assert_eq!(c, 422, "apply needs a fieldManager: {v}");
    let (c, _) = h.send(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/one?dryRun=All",
        Some("application/merge-patch+json"),
        Some(r#"{"data":{"dry":"run"}}"#),
    );
    assert_eq!(c, 200);
    assert!(
        k.object("", "configmaps", Some("default"), "one").unwrap()["data"]
            .get("dry")
            .is_none(),
        "dry run is not stored"
    );
}

#[test]
fn http_selectors_and_paging() {
    let k = FakeKube::start();
    let h = Http::new(&k);
    for (ns, name, labels) in [
        ("a", "one", json!({"tier": "gold", "app": "x"})),
        ("a", "two", json!({"tier": "silver"})),
        ("b", "three", json!({"tier": "bronze", "app": "y"})),
        ("b", "four", json!({})),
    ] {
        let (c, v) = h.post(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            json!({"metadata": {"name": name, "labels": labels}}),
        );
        assert_eq!(c, 201, "{v}");
    }
    let q = |sel: &str| {
        h.names(&format!(
            "/api/v1/configmaps?labelSelector={}",
            urlencode(sel)
        ))
    };
    assert_eq!(q("tier=gold"), ["one"]);
    assert_eq!(q("tier==gold"), ["one"]);
    assert_eq!(q("tier!=gold"), ["two", "four", "three"]);
    assert_eq!(q("tier in (gold, bronze)"), ["one", "three"]);
    assert_eq!(q("tier notin (gold,bronze)"), ["two", "four"]);
    assert_eq!(q("app"), ["one", "three"]);
    assert_eq!(q("!app"), ["two", "four"]);
    assert_eq!(q("app,tier=bronze"), ["three"]);
    let (c, v) = h.get("/api/v1/configmaps?labelSelector=tier%20in%20gold");
    assert_eq!(c, 400, "{v}");

    assert_eq!(
        h.names("/api/v1/configmaps?fieldSelector=metadata.name%3Dtwo"),
        ["two"]
    );
    assert_eq!(
        h.names("/api/v1/configmaps?fieldSelector=metadata.namespace%3Db"),
        ["four", "three"]
    );
    assert_eq!(
        h.names("/api/v1/namespaces/b/configmaps?fieldSelector=metadata.name!%3Dfour"),
        ["three"]
    );
    let (c, v) = h.get("/api/v1/configmaps?fieldSelector=data.x%3D1");
    assert_eq!(c, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("field label not supported")
    );

    let (_, page1) = h.get("/api/v1/configmaps?limit=3");
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    assert_eq!(page1["metadata"]["remainingItemCount"], 1);
    let cont = page1["metadata"]["continue"].as_str().unwrap();
    let (_, page2) = h.get(&format!("/api/v1/configmaps?limit=3&continue={cont}"));
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2["metadata"].get("continue").is_none());
    assert_eq!(page1["kind"], "ConfigMapList");
    assert!(
        page1["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 4
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn http_table_and_partial_metadata() {
    let k = FakeKube::start();
    kubectl_apply(&k, &[], SERVICEOFFER_CRD);
    kubectl_apply(&k, &[], &offer_yaml("t", "0.5", "base"));
    let c = reqwest::blocking::Client::new();
    let url = format!(
        "{}/apis/obol.org/v1alpha1/namespaces/default/serviceoffers?includeObject=Object",
        k.url()
    );
    let r = c
        .get(&url)
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("as=Table")
    );
    let t: Value = r.json().unwrap();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Price", "Network", "Age"]);
    assert_eq!(
        t["rows"][0]["cells"].as_array().unwrap()[..3],
        [json!("t"), json!("0.5"), json!("base")]
    );
    assert_eq!(t["rows"][0]["object"]["spec"]["payment"]["network"], "base");
    let r = c
        .get(&url)
        .header(
            "Accept",
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        )
        .send()
        .unwrap();
    let m: Value = r.json().unwrap();
    assert_eq!(m["kind"], "PartialObjectMetadataList");
    assert_eq!(m["items"][0]["metadata"]["name"], "t");
    assert!(m["items"][0].get("spec").is_none());
    let r = c
        .get(&url)
        .header("Accept", "application/vnd.kubernetes.protobuf")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);
}

#[test]
fn http_discovery_documents() {
    let k = FakeKube::start();
    let h = Http::new(&k);
    let (_, apis) = h.get("/apis");
    assert_eq!(apis["kind"], "APIGroupList");
    let names: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in ["apps", "rbac.authorization.k8s.io", "apiextensions.k8s.io"] {
        assert!(names.contains(&g), "{g} in {names:?}");
    }
    assert!(
        !names.contains(&"monitoring.coreos.com")
            && !names.contains(&"traefik.io")
            && !names.contains(&"gateway.networking.k8s.io")
    );
    let (_, core) = h.get("/api/v1");
    let res: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for r in [
        "namespaces",
        "secrets",
        "configmaps",
        "services",
        "serviceaccounts",
        "pods",
        "events",
    ] {
        assert!(res.contains(&r), "{r}");
    }
    let (_, rbac) = h.get("/apis/rbac.authorization.k8s.io/v1");
    assert_eq!(rbac["resources"].as_array().unwrap().len(), 4);

    for (group, kind, plural) in [
        ("traefik.io", "Middleware", "middlewares"),
        ("gateway.networking.k8s.io", "HTTPRoute", "httproutes"),
    ] {
        let version = if group == "traefik.io" {
            "v1alpha1"
        } else {
            "v1"
        };
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {"group": group, "scope": "Namespaced", "names": {"kind": kind, "plural": plural},
                     "versions": [{"name": version, "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        });
        assert_eq!(
            h.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                crd
            )
            .0,
            201
        );
        let (c, list) = h.get(&format!("/apis/{group}/{version}"));
        assert_eq!(c, 200);
        assert_eq!(list["resources"][0]["name"], plural);
        assert_eq!(list["resources"][0]["namespaced"], true);
    }
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/apis", k.url()))
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let agg: Value = r.json().unwrap();
    let traefik = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "traefik.io")
        .unwrap();
    assert_eq!(
        traefik["versions"][0]["resources"][0]["resource"],
        "middlewares"
    );
    assert_eq!(
        traefik["versions"][0]["resources"][0]["scope"],
        "Namespaced"
    );

    let (c, crd) =
        h.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/middlewares.traefik.io");
    assert_eq!(c, 200);
    let conds: Vec<&str> = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(conds, ["NamesAccepted", "Established"]);
    let (c, _) = h.get("/openapi/v3/apis/traefik.io/v1alpha1");
    assert_eq!(c, 200);
}

/// Reads a whole watch response (the server ends it after `timeoutSeconds`) into events.
fn watch_lines(k: &FakeKube, query: &str) -> Vec<Value> {
    let body = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=true&{query}",
            k.url()
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn http_watch_framing_bookmarks_timeout_and_expiry() {
    let k = FakeKube::start_with(Options {
        history_limit: 4,
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    });
    let h = Http::new(&k);
    let rv0 = k.resource_version();
    h.post(
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "w", "labels": {"x": "1"}}}),
    );
    h.send(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/w",
        Some("application/merge-patch+json"),
        Some(r#"{"data":{"a":"1"}}"#),
    );
    h.send(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/w",
        None,
        None,
    );

    let start = std::time::Instant::now();
    let evs = watch_lines(
        &k,
        &format!("resourceVersion={rv0}&allowWatchBookmarks=true&timeoutSeconds=1"),
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "timeoutSeconds closes the stream"
    );
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[..3], ["ADDED", "MODIFIED", "DELETED"]);
    assert!(
        types[3..].iter().all(|t| *t == "BOOKMARK") && types.len() > 3,
        "{types:?}"
    );
    let bm = &evs[3]["object"];
    assert_eq!(bm["kind"], "ConfigMap");
    assert_eq!(bm["apiVersion"], "v1");
    assert_eq!(
        bm["metadata"]["resourceVersion"],
        k.resource_version().to_string()
    );
    let rvs: Vec<u64> = evs[..3]
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");

    // Label selector on a watch.
    let evs = watch_lines(
        &k,
        &format!(
            "resourceVersion={}&labelSelector=x%3D2&timeoutSeconds=1",
            rv0 + 1
        ),
    );
    assert!(evs.is_empty(), "{evs:?}");

    for i in 0..5 {
        h.post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": format!("n{i}")}}),
        );
    }
    let evs = watch_lines(&k, &format!("resourceVersion={rv0}&timeoutSeconds=1"));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["type"], "ERROR");
    assert_eq!(evs[0]["object"]["code"], 410);
    assert_eq!(evs[0]["object"]["reason"], "Expired");

    // Without a resourceVersion: the current objects as ADDED first.
    let evs = watch_lines(&k, "timeoutSeconds=1&watch=1");
    assert_eq!(evs.len(), 5);
    assert!(evs.iter().all(|e| e["type"] == "ADDED"));
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.org}
spec:
  group: example.org
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [upstream]
            properties:
              upstream: {type: string}
              port: {type: integer, default: 8080, minimum: 1, maximum: 65535}
              network: {type: string, enum: [base, base-sepolia]}
              tags: {type: object, additionalProperties: {type: string}}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[test]
fn crd_schema_prunes_defaults_and_validates() {
    let k = FakeKube::start();
    kubectl_apply(&k, &[], WIDGET_CRD);
    let widget = |spec: &str| {
        format!("apiVersion: example.org/v1\nkind: Widget\nmetadata: {{name: w}}\nspec: {spec}\n")
    };

    // kubectl validates strictly by default: unknown fields are an error.
    let mut c = k.kubectl();
    c.args(["apply", "-f", "-"]);
    let o = run(c, Some(&widget("{upstream: http://u, bogus: 1}")));
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr
            .contains(r#"strict decoding error: unknown field "spec.bogus""#),
        "{}",
        o.stderr
    );
    let o = run(
        {
            let mut c = k.kubectl();
            c.args(["apply", "--validate=warn", "-f", "-"]);
            c
        },
        Some(&widget(
            "{upstream: http://u, bogus: 1, tags: {a: b}, extra: {anything: [1]}}",
        )),
    );
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stderr.contains(r#"unknown field "spec.bogus""#),
        "warned: {}",
        o.stderr
    );
    let w = k
        .object("example.org", "widgets", Some("default"), "w")
        .unwrap();
    assert_eq!(
        w["spec"],
        json!({"upstream": "http://u", "port": 8080, "tags": {"a": "b"}, "extra": {"anything": [1]}}),
        "unknown field pruned, default applied, additionalProperties and preserve-unknown kept"
    );

    let h = Http::new(&k);
    let post = |spec: Value| {
        h.post("/apis/example.org/v1/namespaces/default/widgets", json!({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "x"}, "spec": spec}))
    };
    let (c, v) = post(json!({"upstream": "u", "network": "mainnet"}));
    assert_eq!(c, 422);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(r#"spec.network: Unsupported value: "mainnet""#),
        "{v}"
    );
    let (c, v) = post(json!({"port": 80}));
    assert_eq!(c, 422);
    assert_eq!(v["details"]["causes"][0]["field"], "spec.upstream");
    let (c, v) = post(json!({"upstream": "u", "port": "80"}));
    assert_eq!(c, 422);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("must be of type integer"),
        "{v}"
    );
    let (c, v) = post(json!({"upstream": "u", "port": 70000}));
    assert_eq!(c, 422, "{v}");
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/apis/example.org/v1/namespaces/default/widgets", k.url()))
        .header("Content-Type", "application/json")
        .body(json!({"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "y"}, "spec": {"upstream": "u", "zzz": 1}}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        r.headers()["warning"],
        r#"299 - "unknown field \"spec.zzz\"""#
    );
}

// ---- building blocks -------------------------------------------------------------------------------

#[test]
fn timestamps_and_ages() {
    let s = "2024-02-29T23:59:58Z";
    assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
    assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
    assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1));
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(200), "3m20s");
    assert_eq!(human_duration(3600 * 5 + 180), "5h3m");
    assert_eq!(human_duration(86_400 * 3 + 3600), "3d1h");
}

#[test]
fn jsonpath_subset() {
    let o = json!({"metadata": {"annotations": {"obol.org/paused": "true"}}, "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}, "spec": {"ports": [{"port": 80}]}});
    let ev = |p: &str| JsonPath::parse(p).unwrap().eval(&o);
    assert_eq!(
        ev(r#".status.conditions[?(@.type=="Ready")].status"#),
        [json!("True")]
    );
    assert_eq!(
        ev(r".metadata.annotations.obol\.org/paused"),
        [json!("true")]
    );
    assert_eq!(
        ev(".metadata.annotations['obol.org/paused']"),
        [json!("true")]
    );
    assert_eq!(ev(".spec.ports[0].port"), [json!(80)]);
    assert_eq!(ev("{.spec.ports[*].port}"), [json!(80)]);
    assert!(ev(".spec.missing.deeper").is_empty());
}

#[test]
fn label_selector_parsing() {
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let sel = LabelSelector::parse("app in (a, b), !legacy, tier!=gold, obol.org/role").unwrap();
    assert!(sel.matches(&labels(&[("app", "a"), ("obol.org/role", "x")])));
    assert!(!sel.matches(&labels(&[
        ("app", "a"),
        ("obol.org/role", "x"),
        ("legacy", "1")
    ])));
    assert!(!sel.matches(&labels(&[("app", "c"), ("obol.org/role", "x")])));
    assert!(LabelSelector::parse("app in a").is_err());
    assert!(LabelSelector::parse("=x").is_err());
    assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
}

#[test]
fn kube_target_defaults_to_the_fake() {
    if std::env::var_os(support::fake_kube::target::ENV).is_some_and(|v| !v.is_empty()) {
        let t = KubeTarget::from_env_or_fake();
        assert!(!t.is_fake());
        return;
    }
    let t = KubeTarget::from_env_or_fake();
    assert!(t.is_fake() && t.fake().is_some());
    let o = run(
        {
            let mut c = t.kubectl();
            c.args(["get", "ns", "default", "-o", "name"]);
            c
        },
        None,
    );
    assert_eq!(o.stdout.trim(), "namespace/default");
    assert!(
        std::fs::read_to_string(t.kubeconfig_path())
            .unwrap()
            .contains("current-context: fake")
    );
}

/// Manual poking: `FAKE_KUBE_SERVE_SECS=600 cargo test --test fake_kube serve -- --ignored --nocapture`
/// writes /tmp/fake-kube.kubeconfig and keeps the server up.
#[test]
#[ignore]
fn serve() {
    // Start-up cost: start, answer /version, stop.
    let t = std::time::Instant::now();
    for _ in 0..20 {
        let k = FakeKube::start();
        reqwest::blocking::get(format!("{}/version", k.url())).unwrap();
    }
    println!("start + first answer + stop: {:?} each", t.elapsed() / 20);
    let t = std::time::Instant::now();
    for _ in 0..20 {
        drop(FakeKube::start());
    }
    println!("start + stop: {:?} each", t.elapsed() / 20);
    let t = std::time::Instant::now();
    let k = FakeKube::start();
    println!("started in {:?}", t.elapsed());
    let secs: u64 = std::env::var("FAKE_KUBE_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    std::fs::write(
        "/tmp/fake-kube.kubeconfig",
        std::fs::read(k.kubeconfig_path()).unwrap(),
    )
    .unwrap();
    println!("kubeconfig: /tmp/fake-kube.kubeconfig ({})", k.url());
    std::thread::sleep(Duration::from_secs(secs));
}

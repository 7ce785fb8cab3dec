//! `obol manifests`: the YAML stream parses, has the expected objects, is accepted by
//! `kubectl apply` (against the fake API server, or a real cluster with
//! `OBOL_TEST_KUBECONFIG`), the CRDs then serve ServiceOffers with their printer columns and
//! validation, and the PrometheusRule's groups pass `promtool check rules`.

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use support::fake_kube::KubeTarget;

const SETUP_HINT: &str = "run scripts/setup-test-env.sh";

fn obol() -> Command {
    Command::new(env!("CARGO_BIN_EXE_obol"))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn manifests(args: &[&str]) -> String {
    let out = obol().arg("manifests").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "obol manifests {args:?}: {}",
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn parse_stream(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("each document is YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// `(kind, namespace, name)` of every document.
fn index(docs: &[Value]) -> Vec<(String, String, String)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Runs `cmd` with `stdin` piped in.
fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed (Debian kubernetes-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn kubectl_ok(target: &KubeTarget, args: &[&str]) -> String {
    let out = target.kubectl().args(args).output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn apply(target: &KubeTarget, yaml: &str) -> Output {
    let mut cmd = target.kubectl();
    cmd.args(["apply", "-f", "-"]);
    run_with_stdin(cmd, yaml)
}

/// The prometheus-operator CRDs the monitoring objects need, as a cluster running
/// kube-prometheus-stack has them (minimal schemas). Only applied when missing.
fn ensure_monitoring_crds(target: &KubeTarget) {
    for (plural, kind) in [
        ("servicemonitors", "ServiceMonitor"),
        ("podmonitors", "PodMonitor"),
        ("prometheusrules", "PrometheusRule"),
    ] {
        let name = format!("{plural}.monitoring.coreos.com");
        let present = target
            .kubectl()
            .args(["get", "crd", &name])
            .output()
            .unwrap()
            .status
            .success();
        if present {
            continue;
        }
        let crd = format!(
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {name}}}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {singular}, listKind: {kind}List}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
",
            singular = kind.to_lowercase()
        );
        let out = apply(target, &crd);
        assert!(
            out.status.success(),
            "monitoring CRD {name}: {}",
            text(&out)
        );
    }
}

const PAY_TO: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

fn sample_offer(name: &str, price: &str) -> String {
    format!(
        "apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  name: {name}
  namespace: default
spec:
  type: inference
  model: {{name: qwen3:8b, runtime: ollama}}
  upstream: {{service: ollama, namespace: llm}}
  payment:
    network: base-sepolia
    payTo: \"{PAY_TO}\"
    price: {{perRequest: \"{price}\"}}
  path: /services/{name}
"
    )
}

#[test]
fn the_stream_has_every_object_in_apply_order() {
    let docs = parse_stream(&manifests(&[]));
    let idx = index(&docs);
    let expected: Vec<(&str, &str, &str)> = vec![
        ("CustomResourceDefinition", "", "serviceoffers.obol.org"),
        ("CustomResourceDefinition", "", "purchaserequests.obol.org"),
        ("Namespace", "", "x402"),
        ("ServiceAccount", "x402", "x402-verifier"),
        ("ClusterRole", "", "x402-verifier"),
        ("ClusterRoleBinding", "", "x402-verifier"),
        ("ConfigMap", "x402", "x402-pricing"),
        ("PersistentVolumeClaim", "x402", "x402-verifier-state"),
        ("Deployment", "x402", "x402-verifier"),
        ("Service", "x402", "x402-verifier"),
        ("Namespace", "", "llm"),
        ("ServiceAccount", "llm", "x402-buyer"),
        ("Role", "llm", "x402-buyer"),
        ("RoleBinding", "llm", "x402-buyer"),
        ("ServiceMonitor", "x402", "x402-verifier"),
        ("PodMonitor", "x402", "x402-buyer"),
        ("PrometheusRule", "x402", "x402-verifier"),
        ("Namespace", "", "erpc"),
        ("Secret", "erpc", "obol-oauth-token"),
        ("ServiceAccount", "erpc", "obol-auth"),
        ("Role", "erpc", "oauth-token-writer"),
        ("RoleBinding", "erpc", "oauth-token-writer"),
        ("Role", "erpc", "erpc-restarter"),
        ("RoleBinding", "erpc", "erpc-restarter"),
        ("ConfigMap", "erpc", "erpc-obol-values"),
    ];
    let got: Vec<(&str, &str, &str)> = idx
        .iter()
        .map(|(k, n, m)| (k.as_str(), n.as_str(), m.as_str()))
        .collect();
    assert_eq!(got, expected);

    // The CRDs in the stream are the ones generated from the Rust types.
    let generated = serde_json::to_value(obol::k8s::crd::service_offer_crd()).unwrap();
    assert_eq!(docs[0], generated);

    // Service x402-verifier: 8080 the proxy, 9090 the internal listener (forwardAuth, metrics);
    // monitors as kube-prometheus-stack selects them, scraping the internal port.
    let svc = &docs[9];
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ports"][1]["port"], 9090);
    let sm = &docs[14];
    assert_eq!(sm["metadata"]["labels"]["release"], "monitoring");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "internal");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "30s");
    let pm = &docs[15];
    assert_eq!(pm["spec"]["selector"]["matchLabels"]["app"], "x402-buyer");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "buyer-http");

    // The RoleBindings bind the Role they are named after.
    assert_eq!(docs[13]["roleRef"]["name"], "x402-buyer");
    assert_eq!(docs[21]["roleRef"]["name"], "oauth-token-writer");
}

#[test]
fn the_prometheus_rule_is_the_tested_rules_file() {
    let yaml = manifests(&[]);
    let docs = parse_stream(&yaml);
    let rule = docs
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let file_text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/earnings/rules.yaml"),
    )
    .unwrap();
    let file: Value = serde_yaml_ng::from_str(&file_text).unwrap();
    assert_eq!(rule["spec"], file, "spec is the rules file, structurally");
    // And textually: every line of the file appears, indented under `spec:`.
    for line in file_text.lines().filter(|l| !l.is_empty()) {
        assert!(
            yaml.contains(&format!("\n  {line}\n")),
            "missing line: {line}"
        );
    }

    // promtool accepts the groups as a rules file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x402-rules.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = match Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("promtool not installed (Debian package `prometheus`, {e}): {SETUP_HINT}"),
    };
    assert!(out.status.success(), "promtool check rules: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rules: usize = file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert!(
        stdout.contains(&format!("SUCCESS: {rules} rules found")),
        "{stdout}"
    );
}

#[test]
fn options_change_namespace_image_and_drop_optional_parts() {
    let docs = parse_stream(&manifests(&[
        "--namespace",
        "payments",
        "--image",
        "registry.example/obol:dev",
        "--no-monitoring",
        "--no-erpc",
        "--chain",
        "base",
    ]));
    let idx = index(&docs);
    assert!(idx.iter().all(|(kind, ns, _)| {
        !["ServiceMonitor", "PodMonitor", "PrometheusRule", "Secret"].contains(&kind.as_str())
            && ns != "erpc"
            && ns != "x402"
    }));
    // The buyer's Role stays (in the buyer's namespace).
    let roles: Vec<_> = idx
        .iter()
        .filter(|(kind, _, _)| kind == "Role" || kind == "RoleBinding")
        .map(|(kind, ns, name)| (kind.as_str(), ns.as_str(), name.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            ("Role", "llm", "x402-buyer"),
            ("RoleBinding", "llm", "x402-buyer")
        ]
    );
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deploy["metadata"]["namespace"], "payments");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/obol:dev"
    );
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .unwrap();
    assert_eq!(binding["subjects"][0]["namespace"], "payments");

    // Default image: this version.
    let docs = parse_stream(&manifests(&[]));
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/obolnetwork/obol:{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_options_are_refused_with_a_hint() {
    let out = obol()
        .args(["manifests", "--namespace", "Bad_NS"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: namespace `Bad_NS` is not a valid name"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed on error");

    let out = obol()
        .args(["manifests", "--wallet", "0x1234"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn kubectl_applies_the_stream_and_serves_service_offers() {
    let target = KubeTarget::from_env_or_fake();
    ensure_monitoring_crds(&target);

    let yaml = manifests(&[]);
    let out = apply(&target, &yaml);
    assert!(
        out.status.success(),
        "kubectl apply -f <(obol manifests): {}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "customresourcedefinition.apiextensions.k8s.io/serviceoffers.obol.org",
        "customresourcedefinition.apiextensions.k8s.io/purchaserequests.obol.org",
        "clusterrole.rbac.authorization.k8s.io/x402-verifier",
        "deployment.apps/x402-verifier",
        "service/x402-verifier",
        "prometheusrule.monitoring.coreos.com/x402-verifier",
        "role.rbac.authorization.k8s.io/oauth-token-writer",
        "configmap/erpc-obol-values",
    ] {
        assert!(stdout.contains(line), "{line} not applied:\n{stdout}");
    }
    kubectl_ok(&target, &["get", "crd", "serviceoffers.obol.org"]);
    kubectl_ok(&target, &["get", "crd", "purchaserequests.obol.org"]);

    // Applying the same stream again changes nothing and fails nothing.
    let out = apply(&target, &yaml);
    assert!(out.status.success(), "second apply: {}", text(&out));

    // A ServiceOffer; `kubectl get serviceoffers` shows the printer columns.
    let out = apply(&target, &sample_offer("qwen", "0.001"));
    assert!(out.status.success(), "apply ServiceOffer: {}", text(&out));
    let table = kubectl_ok(&target, &["get", "serviceoffers", "-n", "default"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "TYPE", "MODEL", "PRICE", "NETWORK", "READY", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..5],
        ["qwen", "inference", "qwen3:8b", "0.001", "base-sepolia"],
        "{table}"
    );
    // Short name and the wide column.
    let wide = kubectl_ok(&target, &["get", "so", "-n", "default", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("PATH"), "{wide}");

    // The CRD's defaults are applied by the API server.
    let json = kubectl_ok(
        &target,
        &["get", "so", "qwen", "-n", "default", "-o", "json"],
    );
    let offer: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(offer["spec"]["payment"]["scheme"], "exact");
    assert_eq!(offer["spec"]["payment"]["maxTimeoutSeconds"], 300);
    assert_eq!(offer["spec"]["upstream"]["port"], 11434);
    // And it reads back as obol's typed ServiceOffer.
    let typed: obol::k8s::ServiceOffer = serde_json::from_value(offer).unwrap();
    assert_eq!(
        typed.spec.payment.price.per_request.as_deref(),
        Some("0.001")
    );
    assert_eq!(typed.effective_namespace(), "llm");

    // Re-applying with a new price updates in place.
    let out = apply(&target, &sample_offer("qwen", "0.002"));
    assert!(out.status.success(), "{}", text(&out));
    let price = kubectl_ok(
        &target,
        &[
            "get",
            "so",
            "qwen",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.payment.price.perRequest}",
        ],
    );
    assert_eq!(price, "0.002");

    // The schema refuses what the reference CRD refuses.
    let bad_scheme = sample_offer("bad", "0.001").replace(
        "    network: base-sepolia\n",
        "    network: base-sepolia\n    scheme: upto\n",
    );
    let out = apply(&target, &bad_scheme);
    assert!(
        !out.status.success(),
        "scheme upto accepted: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.payment.scheme"),
        "{}",
        text(&out)
    );
    let no_price = sample_offer("bad", "0.001").replace("    price: {perRequest: \"0.001\"}\n", "");
    let out = apply(&target, &no_price);
    assert!(
        !out.status.success(),
        "offer without price accepted: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("price"),
        "{}",
        text(&out)
    );
    let too_many = format!(
        "apiVersion: obol.org/v1alpha1
kind: PurchaseRequest
metadata: {{name: buy, namespace: default}}
spec:
  endpoint: https://seller.example/services/qwen/v1/chat/completions
  model: qwen3:8b
  count: 2501
  payment:
    network: base-sepolia
    payTo: \"{PAY_TO}\"
    price: \"1000\"
    asset: \"0x036CbD53842c5426634e7929541eC2318f3dCF7e\"
"
    );
    let out = apply(&target, &too_many);
    assert!(!out.status.success(), "count 2501 accepted: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.count"),
        "{}",
        text(&out)
    );
    let ok = apply(&target, &too_many.replace("count: 2501", "count: 5"));
    assert!(ok.status.success(), "{}", text(&ok));
    let table = kubectl_ok(&target, &["get", "pr", "-n", "default"]);
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == [
                "NAME",
                "ENDPOINT",
                "MODEL",
                "PRICE",
                "REMAINING",
                "SPENT",
                "READY",
                "AGE"
            ],
        "{table}"
    );

    // Clean up what a real cluster would keep.
    if !target.is_fake() {
        let _ = target
            .kubectl()
            .args(["delete", "so", "qwen", "-n", "default"])
            .output();
        let _ = target
            .kubectl()
            .args(["delete", "pr", "buy", "-n", "default"])
            .output();
    }
}

#[test]
fn the_stream_without_monitoring_applies_to_a_cluster_without_prometheus_operator() {
    // Always the bare fake: a real cluster may well run the operator.
    let target = KubeTarget::Fake(support::fake_kube::FakeKube::start());
    let out = apply(&target, &manifests(&["--no-monitoring"]));
    assert!(out.status.success(), "{}", text(&out));
    // With monitoring, a bare cluster refuses the stream (no monitoring.coreos.com kinds).
    let out = apply(&target, &manifests(&[]));
    assert!(!out.status.success(), "{}", text(&out));
}

/// No Docker engine runs here, so the Dockerfile is checked for what `obol manifests` relies
/// on: the builder's Rust is recent enough, the build is locked and static, the image is
/// non-root with CA certificates and `obol` as entrypoint.
#[test]
fn the_dockerfile_builds_a_static_non_root_image_with_ca_certificates() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let version = |s: &str| -> (u32, u32) {
        let mut it = s.split('.').map(|p| p.parse::<u32>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    let builder = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("a rust builder stage");
    let builder = builder.split('-').next().unwrap();
    let msrv = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        version(builder) >= version(msrv),
        "rust:{builder} < rust-version {msrv}"
    );
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile.contains("-unknown-linux-musl"),
        "static musl build"
    );
    assert!(dockerfile.contains("FROM gcr.io/distroless/static-debian12:nonroot"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/obol"]"#));
    // The Deployment runs as the image's user.
    let docs = parse_stream(&manifests(&[]));
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        deploy["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        65532
    );
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target/"));
}

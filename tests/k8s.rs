//! obol's Kubernetes layer (`obol::k8s`) against the fake API server: a client from a
//! kubeconfig, server-side apply of a ServiceOffer and its owned children (deleted with it),
//! status conditions, the paused annotation, the Secret written with `data`, and a rollout
//! restart.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use obol::k8s::apply::{self, FIELD_MANAGER};
use obol::k8s::children::{self, RouteOptions};
use obol::k8s::types::{
    OfferPayment, OfferPrice, OfferUpstream, ServiceOffer, ServiceOfferSpec, condition,
};
use obol::k8s::{ClientOptions, Condition, K8sError, KubeClient};
use support::fake_kube::FakeKube;

async fn client(fake: &FakeKube) -> KubeClient {
    let c = KubeClient::new(&ClientOptions {
        kubeconfig: Some(fake.kubeconfig_path().to_path_buf()),
        context: None,
        namespace: Some("shop".into()),
    })
    .await
    .expect("client from the fake's kubeconfig");
    c.check_reachable(Duration::from_secs(10))
        .await
        .expect("the fake answers /version");
    c
}

fn offer(price: &str, upstream_ns: Option<&str>) -> ServiceOffer {
    let mut o = ServiceOffer::new(
        "qwen",
        ServiceOfferSpec {
            offer_type: Some("http".into()),
            upstream: Some(OfferUpstream {
                service: "ollama".into(),
                namespace: upstream_ns.map(String::from),
                port: Some(11434),
                health_path: None,
            }),
            payment: OfferPayment {
                network: Some("base-sepolia".into()),
                pay_to: Some("0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into()),
                price: OfferPrice {
                    per_request: Some(price.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            path: Some("/services/qwen".into()),
            ..Default::default()
        },
    );
    o.metadata.namespace = Some("shop".into());
    // The forward-auth children (Middleware, HTTPRoute to the upstream, ReferenceGrant there);
    // proxy-mode children are checked in tests/sell_kube.rs.
    o.metadata.annotations = Some(std::collections::BTreeMap::from([(
        obol::k8s::types::GATE_ANNOTATION.to_string(),
        "forward-auth".to_string(),
    )]));
    o
}

#[tokio::test]
async fn offer_and_children_are_applied_updated_and_deleted_together() {
    let fake = FakeKube::start();
    fake.apply(&support::fake_kube::obol_crds());
    fake.apply(support::fake_kube::ROUTING_CRDS);
    let kc = client(&fake).await;
    assert_eq!(kc.namespace(), "shop");
    let offers = kc.service_offers(None);

    // Create: server-side apply as `obol`; the CRD's defaults come back.
    let applied = apply::apply(&offers, &offer("0.001", Some("models")))
        .await
        .unwrap();
    let uid = applied.metadata.uid.clone().expect("uid");
    assert_eq!(applied.spec.payment.scheme.as_deref(), Some("exact"));
    assert_eq!(applied.spec.payment.max_timeout_seconds, Some(300));
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec![FIELD_MANAGER.to_string()]);

    // Children, owned by the offer (the ReferenceGrant lives in the upstream's namespace).
    let rendered = children::children(&applied, &RouteOptions::default()).unwrap();
    assert_eq!(rendered.len(), 3);
    for (resource, obj) in &rendered {
        apply::apply_dynamic(kc.client(), resource, obj)
            .await
            .unwrap();
    }
    let mw = fake
        .object("traefik.io", "middlewares", Some("shop"), "x402-qwen")
        .expect("Middleware applied");
    assert_eq!(mw["metadata"]["ownerReferences"][0]["uid"], uid.as_str());
    assert_eq!(
        mw["spec"]["forwardAuth"]["address"],
        "http://x402-verifier.x402.svc.cluster.local:9090/verify"
    );
    let route = fake
        .object(
            "gateway.networking.k8s.io",
            "httproutes",
            Some("shop"),
            "so-qwen",
        )
        .expect("HTTPRoute applied");
    assert_eq!(
        route["spec"]["rules"][0]["matches"][0]["path"]["value"],
        "/services/qwen"
    );
    assert!(
        fake.object(
            "gateway.networking.k8s.io",
            "referencegrants",
            Some("models"),
            "so-shop-qwen-backend"
        )
        .is_some()
    );

    // Update in place: same uid, new price, the generation moves.
    let updated = apply::apply(&offers, &offer("0.002", Some("models")))
        .await
        .unwrap();
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        updated.spec.payment.price.per_request.as_deref(),
        Some("0.002")
    );
    assert!(updated.metadata.generation > applied.metadata.generation);

    // Conditions: written once, a repeat is no write, other types are kept.
    let gate = Condition::new(
        condition::PAYMENT_GATE_READY,
        condition::FALSE,
        "InvalidPrice",
        "price `x` is not a decimal",
    );
    let route_ok = Condition::new(
        condition::ROUTE_PUBLISHED,
        condition::TRUE,
        "Applied",
        "HTTPRoute so-qwen",
    );
    assert!(
        apply::set_conditions(
            &offers,
            "qwen",
            &[gate.clone(), route_ok],
            updated.metadata.generation
        )
        .await
        .unwrap()
    );
    assert!(
        !apply::set_conditions(&offers, "qwen", std::slice::from_ref(&gate), None)
            .await
            .unwrap()
    );
    assert!(
        !apply::set_conditions(&offers, "qwen", &[gate], updated.metadata.generation)
            .await
            .unwrap(),
        "same conditions and generation: no write"
    );
    let got = offers.get("qwen").await.unwrap();
    let c = got.condition(condition::PAYMENT_GATE_READY).unwrap();
    assert_eq!(c.reason.as_deref(), Some("InvalidPrice"));
    assert!(c.last_transition_time.is_some());
    assert_eq!(got.route_published(), Some(true));
    assert_eq!(
        got.status.as_ref().unwrap().observed_generation,
        updated.metadata.generation
    );
    // Applying the spec again does not drop the status.
    let again = apply::apply(&offers, &offer("0.002", Some("models")))
        .await
        .unwrap();
    assert_eq!(again.status.as_ref().unwrap().conditions.len(), 2);

    // Pause and resume with the annotation.
    let pp = PatchParams::default();
    let paused = offers
        .patch("qwen", &pp, &Patch::Merge(children::paused_patch(true)))
        .await
        .unwrap();
    assert!(paused.is_paused());
    let resumed = offers
        .patch("qwen", &pp, &Patch::Merge(children::paused_patch(false)))
        .await
        .unwrap();
    assert!(!resumed.is_paused());

    // Delete the offer: the owned children go with it; the grant is found by its labels.
    offers
        .delete("qwen", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        fake.object("traefik.io", "middlewares", Some("shop"), "x402-qwen")
            .is_none()
    );
    assert!(
        fake.object(
            "gateway.networking.k8s.io",
            "httproutes",
            Some("shop"),
            "so-qwen"
        )
        .is_none()
    );
    let grants = apply::dynamic_api(
        kc.client(),
        &children::reference_grant_resource(),
        Some("models"),
    );
    let found = grants
        .list(&ListParams::default().labels(&children::child_label_selector("shop", "qwen")))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert!(
        apply::delete_if_exists(&grants, "so-shop-qwen-backend")
            .await
            .unwrap()
    );
    assert!(
        !apply::delete_if_exists(&grants, "so-shop-qwen-backend")
            .await
            .unwrap()
    );

    // A missing offer is a 404 that names the cluster.
    let err = kc.error(
        "reading ServiceOffer shop/qwen",
        offers.get("qwen").await.unwrap_err(),
    );
    assert!(err.is_not_found(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("reading ServiceOffer shop/qwen: the API server http://127.0.0.1:"),
        "{msg}"
    );
    assert!(msg.contains("context `fake`"), "{msg}");
}

#[tokio::test]
async fn an_uninstalled_crd_is_reported_with_the_install_hint() {
    let fake = FakeKube::start();
    let kc = client(&fake).await;
    let err = kc
        .service_offers(None)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    let err = kc.error("listing ServiceOffers", err);
    assert!(matches!(err, K8sError::Api { code: 404, .. }), "{err}");
    assert!(
        err.hint().contains("obol manifests"),
        "{err}: {}",
        err.hint()
    );
}

#[tokio::test]
async fn secret_is_applied_with_data_and_erpc_restarted() {
    let fake = FakeKube::start();
    fake.apply(
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: erpc, namespace: erpc}
spec:
  selector: {matchLabels: {app: erpc}}
  template:
    metadata: {labels: {app: erpc}}
    spec:
      containers: [{name: erpc, image: ghcr.io/erpc/erpc:0.0.56}]
",
    );
    let kc = client(&fake).await;
    let token = |t: &str| BTreeMap::from([("token".to_string(), t.as_bytes().to_vec())]);
    apply::apply_secret(kc.client(), "erpc", "obol-oauth-token", token("ey.first"))
        .await
        .unwrap();
    apply::apply_secret(kc.client(), "erpc", "obol-oauth-token", token("ey.second"))
        .await
        .unwrap();
    let secret = fake
        .object("", "secrets", Some("erpc"), "obol-oauth-token")
        .unwrap();
    assert_eq!(secret["data"]["token"], "ZXkuc2Vjb25k");
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none());
    let patch_bodies: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/secrets/obol-oauth-token"))
        .map(|r| r.json())
        .collect();
    assert_eq!(patch_bodies.len(), 2);
    assert!(patch_bodies.iter().all(|b| b.get("stringData").is_none()));

    let deployments: Api<Deployment> = kc.namespaced_in("erpc");
    apply::rollout_restart_with(&deployments, "erpc", "obol.org/token-sha256", "h1")
        .await
        .unwrap();
    apply::rollout_restart(&deployments, "erpc").await.unwrap();
    let d = fake
        .object("apps", "deployments", Some("erpc"), "erpc")
        .unwrap();
    let ann = &d["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["obol.org/token-sha256"], "h1");
    assert!(ann[apply::RESTARTED_AT_ANNOTATION].is_string(), "{ann}");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["name"],
        json!("erpc")
    );
}

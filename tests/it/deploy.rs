//! The Kubernetes manifests checked offline (there is no cluster here): every document is a
//! well-formed object, names and ports line up between the Deployment, its probes and the
//! Services, shutdown has room for draining, and the config in the ConfigMap is one
//! switchyard accepts.

use std::path::Path;
use switchyard::config::yaml::{Node, NodeKind, parse};

fn text(n: Option<&Node>) -> Option<&str> {
    match &n?.kind {
        NodeKind::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn at<'a>(n: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter().try_fold(n, |n, k| n.get(k))
}

/// A flat mapping of scalars as (key, value) pairs, positions left out.
fn pairs(n: Option<&Node>) -> Vec<(String, String)> {
    match n.map(|n| &n.kind) {
        Some(NodeKind::Map(entries)) => entries
            .iter()
            .map(|(k, v)| (k.text.clone(), text(Some(v)).unwrap_or("").to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

fn items(n: Option<&Node>) -> &[Node] {
    match n.map(|n| &n.kind) {
        Some(NodeKind::Seq(v)) => v,
        _ => &[],
    }
}

#[test]
fn kubernetes_manifests_are_consistent_and_carry_a_valid_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/switchyard.yaml");
    let all = std::fs::read_to_string(&root).unwrap();
    let docs: Vec<Node> = all
        .split("\n---\n")
        .map(|d| parse(d).unwrap_or_else(|e| panic!("not YAML: {e:?}\n{d}")))
        .collect();
    let kind = |k: &str| -> Vec<&Node> {
        docs.iter()
            .filter(|d| text(d.get("kind")) == Some(k))
            .collect()
    };
    for d in &docs {
        for key in [&["apiVersion"][..], &["kind"], &["metadata", "name"]] {
            assert!(text(at(d, key)).is_some(), "a document lacks {key:?}");
        }
    }

    let deployment = kind("Deployment")[0];
    let labels = pairs(at(deployment, &["spec", "template", "metadata", "labels"]));
    let selector = pairs(at(deployment, &["spec", "selector", "matchLabels"]));
    assert!(!selector.is_empty());
    assert_eq!(labels, selector, "the Deployment selects its own pods");
    let pod = at(deployment, &["spec", "template", "spec"]).unwrap();
    let container = &items(pod.get("containers"))[0];
    let ports: Vec<&str> = items(container.get("ports"))
        .iter()
        .filter_map(|p| text(p.get("name")))
        .collect();
    for probe in ["readinessProbe", "livenessProbe"] {
        let port = text(at(container, &[probe, "httpGet", "port"])).unwrap();
        assert!(
            ports.contains(&port),
            "{probe} uses port {port}, not one of {ports:?}"
        );
        assert_eq!(
            text(at(container, &[probe, "httpGet", "path"])),
            Some("/healthz")
        );
    }
    let pre_stop: u64 = text(at(container, &["lifecycle", "preStop", "sleep", "seconds"]))
        .expect("a preStop sleep lets the endpoints drain")
        .parse()
        .unwrap();
    let grace: u64 = text(pod.get("terminationGracePeriodSeconds"))
        .unwrap()
        .parse()
        .unwrap();

    // The switchyard Service points at the Deployment's pods and a container port; the app
    // Service is headless, so its name lists every pod.
    let services = kind("Service");
    let sy = services
        .iter()
        .find(|s| text(at(s, &["metadata", "name"])) == Some("switchyard"))
        .unwrap();
    assert_eq!(pairs(at(sy, &["spec", "selector"])), selector);
    for p in items(at(sy, &["spec", "ports"])) {
        assert!(ports.contains(&text(p.get("targetPort")).unwrap()));
    }
    let app = services
        .iter()
        .find(|s| text(at(s, &["metadata", "name"])) == Some("app"))
        .unwrap();
    assert_eq!(text(at(app, &["spec", "clusterIP"])), Some("None"));

    // The ConfigMap's config, with the admin token file the Secret mounts.
    let config_map = kind("ConfigMap")[0];
    let config_text = text(at(config_map, &["data", "switchyard.yaml"])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a-token-of-at-least-sixteen-characters").unwrap();
    let config_text =
        config_text.replace("/etc/switchyard-admin/token", &token.display().to_string());
    let config = switchyard::config::load_str(&config_text, "configmap", dir.path().join("c.yaml"))
        .unwrap_or_else(|e| panic!("the ConfigMap's config is refused:\n{e}"));
    assert!(
        config.upstreams[0]
            .dns
            .iter()
            .any(|e| e.name.starts_with("app.default.svc")),
        "the app pool follows the headless Service"
    );
    let shutdown = config.shutdown_grace.as_secs();
    assert!(
        grace > pre_stop + shutdown,
        "terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} + shutdown_grace {shutdown}"
    );
}

//! What the cluster's own controllers do because of an object Git holds is explained from Git
//! (issue 20): on the real binary, with requests shaped as the API server sends them.

mod support;

use serde_json::json;
use support::gate::{DEPLOYMENT, FLUX, Gate, allowed, message, request, stored};

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1.0
        resources:
          requests: {cpu: 100m}
          limits: {cpu: 200m, memory: 128Mi}
        securityContext: {runAsNonRoot: true, runAsUser: 1000}
";

const HPA: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
";

#[test]
fn a_horizontal_pod_autoscaler_in_git_explains_the_replicas_it_sets() {
    let api = WEB.replace("name: web\n  namespace", "name: api\n  namespace");
    let repo = support::repo_with(&[
        ("web.yaml", WEB.as_bytes()),
        ("hpa.yaml", HPA.as_bytes()),
        ("api.yaml", api.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\n",
            repo.path().display()
        ),
    );
    gate.wait_ready();
    let scaled = |manifest: &str, replicas: i64| {
        let mut o = stored(manifest, "kustomize-controller");
        o["spec"]["replicas"] = json!(replicas);
        o
    };
    // Flux's next apply of the Deployment the autoscaler scaled to 5 (Git sets no replicas).
    let live = scaled(WEB, 5);
    let apply = gate.review(request(
        "UPDATE",
        DEPLOYMENT,
        None,
        FLUX,
        &live,
        Some(&live),
    ));
    assert!(allowed(&apply), "within the autoscaler's range: {apply}");
    let created = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        FLUX,
        &scaled(WEB, 5),
        None,
    ));
    assert!(allowed(&created), "{created}");
    // Beyond its range, nothing explains it.
    let over = gate.review(request(
        "UPDATE",
        DEPLOYMENT,
        None,
        FLUX,
        &scaled(WEB, 50),
        Some(&live),
    ));
    assert!(!allowed(&over), "{over}");
    assert!(message(&over).contains("spec.replicas"), "{over}");
    // A Deployment no autoscaler targets keeps Git's (default) replicas.
    let api_live = scaled(&api, 5);
    let other = gate.review(request("CREATE", DEPLOYMENT, None, FLUX, &api_live, None));
    assert!(!allowed(&other), "{other}");
    assert!(message(&other).contains("spec.replicas"), "{other}");
    gate.stop();
}

#[test]
fn a_namespaces_limit_range_explains_the_requests_and_limits_it_fills_in() {
    let limit_range = "apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
  namespace: shop
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m}
";
    let pod = "apiVersion: v1
kind: Pod
metadata:
  name: tool
  namespace: shop
spec:
  containers:
  - name: tool
    image: tool:1.0
    securityContext: {runAsNonRoot: true, runAsUser: 1000}
";
    let repo = support::repo_with(&[
        ("limits.yaml", limit_range.as_bytes()),
        ("pod.yaml", pod.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\n",
            repo.path().display()
        ),
    );
    gate.wait_ready();
    let filled = |limits: serde_json::Value, requests: serde_json::Value| {
        let mut o = stored(pod, "kustomize-controller");
        o["spec"]["containers"][0]["resources"] = json!({"limits": limits, "requests": requests});
        o
    };
    // As the LimitRanger plugin fills it in (the memory request defaults to the limit).
    let defaulted = filled(
        json!({"cpu": "500m", "memory": "256Mi"}),
        json!({"cpu": "100m", "memory": "256Mi"}),
    );
    let pod_gvr = support::gate::POD;
    let created = gate.review(request("CREATE", pod_gvr, None, FLUX, &defaulted, None));
    assert!(allowed(&created), "{created}");
    // A limit the LimitRange does not give.
    let bigger = filled(
        json!({"cpu": "4", "memory": "256Mi"}),
        json!({"cpu": "100m", "memory": "256Mi"}),
    );
    let refused = gate.review(request("CREATE", pod_gvr, None, FLUX, &bigger, None));
    assert!(!allowed(&refused), "{refused}");
    assert!(
        message(&refused).contains("resources.limits.cpu"),
        "{refused}"
    );
    gate.stop();
}

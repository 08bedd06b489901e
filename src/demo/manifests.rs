//! What the demo's GitOps repository holds: a namespace, a web Deployment and its ConfigMap
//! under `clusters/prod`, and the files of its two pull requests.

pub const NAMESPACE_PATH: &str = "clusters/prod/namespace.yaml";
pub const NAMESPACE: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
";

pub const CONFIG_PATH: &str = "clusters/prod/web-config.yaml";
pub const CONFIG: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  PODINFO_UI_MESSAGE: welcome to the shop
";

pub const WEB_PATH: &str = "clusters/prod/web.yaml";

/// The web Deployment at a podinfo version. Its quantities are written as people write them
/// (`0.1`, `\"1.0\"`, `1.5Gi`); the API server stores `100m`, `1`, `1536Mi`.
pub fn web(version: &str) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {{app: web}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: ghcr.io/stefanprodan/podinfo:{version}
        ports:
        - containerPort: 9898
        envFrom:
        - configMapRef: {{name: web-config}}
        resources:
          requests: {{cpu: 0.1, memory: 64Mi}}
          limits: {{cpu: \"1.0\", memory: 1.5Gi}}
"
    )
}

/// Pull request #1 adds this file: a cache on an unpinned image, privileged, with no limits.
pub const CACHE_PATH: &str = "clusters/prod/cache.yaml";
pub const CACHE: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cache
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: cache}
  template:
    metadata:
      labels: {app: cache}
    spec:
      containers:
      - name: redis
        image: redis:latest
        securityContext:
          privileged: true
";

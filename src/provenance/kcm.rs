//! The identities kube-controller-manager writes objects as.
//!
//! kube-controller-manager writes as `system:kube-controller-manager` (its own credentials)
//! when it runs without `--use-service-account-credentials`, and for the service-account token
//! controller and its other root-client work in every case. With
//! `--use-service-account-credentials` (kubeadm's default, and most distributions') each
//! controller writes as its own service account in `kube-system`, named by the
//! `ClientBuilder.ClientOrDie("<name>")` / `NewClient("<name>")` call that builds its client.

/// Every identity kube-controller-manager writes objects as, across Kubernetes 1.24 to 1.34
/// (a union: a name that only some versions use, or that only a feature gate or an opt-in
/// controller turns on, is listed all the same), sorted.
///
/// Where the list comes from (kubernetes/kubernetes):
/// - `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/controller_policy.go`: every
///   `saRolePrefix + "<name>"` ClusterRole, each bound to the service account
///   `kube-system:<name>` (`addControllerRole`);
/// - `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/namespace_policy.go`: the namespaced
///   controller roles `bootstrap-signer`, `token-cleaner` and `cloud-provider` (the client the
///   in-tree cloud providers, e.g. GCE's `Initialize`, built inside kube-controller-manager
///   before they were removed in 1.31);
/// - the controller descriptors under `cmd/kube-controller-manager/app/` (`core.go`,
///   `apps.go`, `batch.go`, `autoscaling.go`, `bootstrap.go`, `certificates.go`,
///   `discovery.go`, `networking.go`, `policy.go`, `rbac.go`, `storageversionmigrator.go`,
///   `validatingadmissionpolicystatus.go`): the name given to `ClientOrDie`/`NewClient`.
///   Several controllers share one: node IPAM, node lifecycle, taint eviction and the cloud
///   node lifecycle controller all write as `node-controller`; CSR signing, approving and
///   cleaning as `certificate-controller`.
///
/// Not listed: `kube-system:leader-election-controller` (coordinated leader election runs in
/// kube-apiserver, as `system:apiserver`, and writes only Leases) and `system:kube-scheduler`
/// (another component; it binds Pods and writes Events and Leases).
pub const CONTROLLER_MANAGER_IDENTITIES: &[&str] = &[
    "system:kube-controller-manager",
    "system:serviceaccount:kube-system:attachdetach-controller",
    "system:serviceaccount:kube-system:bootstrap-signer",
    "system:serviceaccount:kube-system:certificate-controller",
    "system:serviceaccount:kube-system:cloud-provider",
    "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:device-taint-eviction-controller",
    "system:serviceaccount:kube-system:disruption-controller",
    "system:serviceaccount:kube-system:endpoint-controller",
    "system:serviceaccount:kube-system:endpointslice-controller",
    "system:serviceaccount:kube-system:endpointslicemirroring-controller",
    "system:serviceaccount:kube-system:ephemeral-volume-controller",
    "system:serviceaccount:kube-system:expand-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:kube-apiserver-serving-clustertrustbundle-publisher",
    "system:serviceaccount:kube-system:legacy-service-account-token-cleaner",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:node-controller",
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:serviceaccount:kube-system:pod-garbage-collector",
    "system:serviceaccount:kube-system:podcertificaterequestcleaner",
    "system:serviceaccount:kube-system:pv-protection-controller",
    "system:serviceaccount:kube-system:pvc-protection-controller",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:resource-claim-controller",
    "system:serviceaccount:kube-system:resourcequota-controller",
    "system:serviceaccount:kube-system:root-ca-cert-publisher",
    "system:serviceaccount:kube-system:route-controller",
    "system:serviceaccount:kube-system:selinux-warning-controller",
    "system:serviceaccount:kube-system:service-account-controller",
    "system:serviceaccount:kube-system:service-cidrs-controller",
    "system:serviceaccount:kube-system:service-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:storage-version-garbage-collector",
    "system:serviceaccount:kube-system:storage-version-migrator-controller",
    "system:serviceaccount:kube-system:token-cleaner",
    "system:serviceaccount:kube-system:ttl-after-finished-controller",
    "system:serviceaccount:kube-system:ttl-controller",
    "system:serviceaccount:kube-system:validatingadmissionpolicy-status-controller",
    "system:serviceaccount:kube-system:volumeattributesclass-protection-controller",
];

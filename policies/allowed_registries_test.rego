package gitgate.allowed_registries_test

import rego.v1

import data.gitgate.allowed_registries

# --- helpers -----------------------------------------------------------------

review(obj, registries) := {
	"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj},
	"parameters": {"registries": registries},
}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

org := ["ghcr.io/org/"]

violations(obj, registries) := vs if {
	vs := allowed_registries.violation with input as review(obj, registries)
}

msgs(obj) := {v.msg | some v in violations(obj, org)}

# A pod with one container "app" running `image`.
pod_with(image) := workload("Pod", {"containers": [{"name": "app", "image": image}]})

allowed(image, registries) if count(violations(pod_with(image), registries)) == 0

denied(image, registries) if count(violations(pod_with(image), registries)) == 1

evil := {"containers": [{"name": "app", "image": "evil.example/miner:1"}]}

msg_at(path) := sprintf(`allowed-registries: container "app" (%s) uses image "evil.example/miner:1", which is not from an allowed registry; use an image starting with one of: ghcr.io/org/`, [path])

# --- disabled until configured -----------------------------------------------

test_disabled_with_empty_list if {
	allowed("evil.example/miner:latest", [])
}

test_disabled_without_parameters if {
	inp := {"review": {"operation": "CREATE", "object": pod_with("evil.example/miner:1")}}
	count(allowed_registries.violation) == 0 with input as inp
	inp2 := {"review": {"operation": "CREATE", "object": pod_with("evil.example/miner:1")}, "parameters": {}}
	count(allowed_registries.violation) == 0 with input as inp2
	inp3 := {"review": {"operation": "CREATE", "object": pod_with("evil.example/miner:1")}, "parameters": null}
	count(allowed_registries.violation) == 0 with input as inp3
}

test_disabled_with_null_or_wrong_type if {
	allowed("evil.example/miner:1", null)
	allowed("evil.example/miner:1", "ghcr.io/org/")
}

test_non_string_prefixes_are_ignored if {
	# Only the string prefix counts; with no usable prefix the policy stays disabled.
	denied("evil.example/miner:1", [1, null, "ghcr.io/org/"])
	allowed("evil.example/miner:1", [1, null])
	allowed("evil.example/miner:1", [""])
}

# --- allowed -----------------------------------------------------------------

test_allowed_prefix if {
	allowed("ghcr.io/org/app:1.0", org)
	allowed("ghcr.io/org/team/app@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", org)
}

test_allowed_any_of_several if {
	regs := ["ghcr.io/org/", "registry.example:5000/", "docker.io/library/"]
	allowed("ghcr.io/org/app:1", regs)
	allowed("registry.example:5000/app:1", regs)
	allowed("nginx:1.27", regs)
}

test_docker_hub_official_image_short_name if {
	allowed("nginx", ["docker.io/library/"])
	allowed("nginx:1.27", ["docker.io/library/nginx"])
	allowed("library/nginx:1.27", ["docker.io/library/"])
	allowed("docker.io/nginx:1.27", ["docker.io/library/"])
	allowed("index.docker.io/library/nginx:1.27", ["docker.io/library/"])
}

test_docker_hub_user_image if {
	allowed("bitnami/redis:7", ["docker.io/bitnami/"])
	allowed("docker.io/bitnami/redis:7", ["docker.io/bitnami/"])
	allowed("bitnami/redis:7", ["bitnami/"])
}

test_prefix_as_written if {
	allowed("nginx:1.27", ["nginx"])
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod_with("evil.example/miner:1")}, "parameters": {"registries": org}}
	count(allowed_registries.violation) == 0 with input as inp
}

test_not_a_workload if {
	count(violations({"kind": "ConfigMap", "data": {"image": "evil.example/miner:1"}}, org)) == 0
}

test_container_without_image_is_skipped if {
	count(violations(workload("Pod", {"containers": [{"name": "app"}]}), org)) == 0
}

test_missing_spec if {
	count(violations({"kind": "Deployment"}, org)) == 0
}

# --- denied ------------------------------------------------------------------

test_denied_other_registry if {
	vs := violations(pod_with("evil.example/miner:1"), org)
	count(vs) == 1
	some v in vs
	v.msg == msg_at("spec.containers[0]")
	v.details == {"container": "app", "path": "spec.containers[0].image", "image": "evil.example/miner:1"}
}

test_denied_docker_hub_when_not_listed if {
	denied("nginx:1.27", org)
	denied("bitnami/redis:7", ["docker.io/library/"])
}

test_denied_lookalike_registry if {
	denied("ghcr.io/organisation/app:1", org)
	denied("ghcr.io.evil.example/org/app:1", org)
}

test_denied_registry_host_that_looks_like_a_hub_user if {
	# "localhost/..." and "registry:5000/..." are registries, not Docker Hub users.
	denied("localhost/app:1", ["docker.io/"])
	denied("registry:5000/app:1", ["docker.io/"])
}

test_message_lists_every_prefix if {
	vs := violations(pod_with("evil.example/miner:1"), ["ghcr.io/org/", "docker.io/library/"])
	some v in vs
	v.msg == `allowed-registries: container "app" (spec.containers[0]) uses image "evil.example/miner:1", which is not from an allowed registry; use an image starting with one of: ghcr.io/org/, docker.io/library/`
}

test_denied_init_container if {
	spec := {
		"initContainers": [{"name": "init", "image": "busybox:1.36"}],
		"containers": [{"name": "app", "image": "ghcr.io/org/app:1"}],
	}
	msgs(workload("Pod", spec)) == {`allowed-registries: init container "init" (spec.initContainers[0]) uses image "busybox:1.36", which is not from an allowed registry; use an image starting with one of: ghcr.io/org/`}
}

test_denied_ephemeral_container if {
	spec := {
		"containers": [{"name": "app", "image": "ghcr.io/org/app:1"}],
		"ephemeralContainers": [{"name": "dbg", "image": "busybox:1.36"}],
	}
	msgs(workload("Pod", spec)) == {`allowed-registries: ephemeral container "dbg" (spec.ephemeralContainers[0]) uses image "busybox:1.36", which is not from an allowed registry; use an image starting with one of: ghcr.io/org/`}
}

test_denied_in_deployment if {
	msgs(workload("Deployment", evil)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_statefulset if {
	msgs(workload("StatefulSet", evil)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_daemonset if {
	msgs(workload("DaemonSet", evil)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicaset if {
	msgs(workload("ReplicaSet", evil)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_job if {
	msgs(workload("Job", evil)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicationcontroller if {
	msgs(workload("ReplicationController", evil)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_podtemplate if {
	msgs(workload("PodTemplate", evil)) == {msg_at("template.spec.containers[0]")}
}

test_denied_in_cronjob if {
	msgs(workload("CronJob", evil)) == {msg_at("spec.jobTemplate.spec.template.spec.containers[0]")}
}

# --- normalization -----------------------------------------------------------

test_normalized if {
	allowed_registries.normalized("nginx") == "docker.io/library/nginx"
	allowed_registries.normalized("nginx:1.27") == "docker.io/library/nginx:1.27"
	allowed_registries.normalized("library/nginx") == "docker.io/library/nginx"
	allowed_registries.normalized("bitnami/redis:7") == "docker.io/bitnami/redis:7"
	allowed_registries.normalized("docker.io/nginx") == "docker.io/library/nginx"
	allowed_registries.normalized("docker.io/bitnami/redis") == "docker.io/bitnami/redis"
	allowed_registries.normalized("index.docker.io/nginx") == "docker.io/library/nginx"
	allowed_registries.normalized("ghcr.io/org/app:1") == "ghcr.io/org/app:1"
	allowed_registries.normalized("registry:5000/app") == "registry:5000/app"
	allowed_registries.normalized("localhost/app") == "localhost/app"
}

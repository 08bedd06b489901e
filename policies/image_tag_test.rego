package gitgate.image_tag_test

import rego.v1

import data.gitgate.image_tag

# --- helpers -----------------------------------------------------------------

review(obj) := {"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}, "parameters": {}}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

violations(obj) := vs if {
	vs := image_tag.violation with input as review(obj)
}

msgs(obj) := {v.msg | some v in violations(obj)}

# A pod with one container "app" running `image`.
pod_with(image) := workload("Pod", {"containers": [{"name": "app", "image": image}]})

allowed(image) if count(violations(pod_with(image))) == 0

denied(image) if count(violations(pod_with(image))) == 1

latest := {"containers": [{"name": "app", "image": "nginx:latest"}]}

latest_msg_at(path) := sprintf(`latest-tag: container "app" (%s) uses image "nginx:latest" with the mutable tag latest; pin a version tag or a digest (@sha256:...) instead`, [path])

# --- allowed -----------------------------------------------------------------

test_allowed_version_tag if {
	allowed("nginx:1.27")
	allowed("ghcr.io/stefanprodan/podinfo:6.5.0")
	allowed("library/nginx:1.27-alpine")
}

test_allowed_digest if {
	allowed("nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31")
	allowed("ghcr.io/org/app@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31")
}

test_allowed_latest_pinned_by_digest if {
	# The digest decides what runs; the tag is only a label.
	allowed("nginx:latest@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31")
}

test_allowed_registry_port_with_tag if {
	allowed("registry:5000/app:1.0")
	allowed("localhost:5000/team/app:2.3.4")
}

test_allowed_tags_that_only_contain_latest if {
	allowed("app:latest-1")
	allowed("app:1.0-latest")
	allowed("latest:1.0")
	allowed("registry.example/latest/app:1")
}

test_container_without_image_is_skipped if {
	count(violations(workload("Pod", {"containers": [{"name": "app"}]}))) == 0
	count(violations(workload("Pod", {"containers": [{"name": "app", "image": null}]}))) == 0
	count(violations(workload("Pod", {"containers": [{"name": "app", "image": ""}]}))) == 0
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod_with("nginx")}}
	count(image_tag.violation) == 0 with input as inp
}

test_not_a_workload if {
	count(violations({"kind": "ConfigMap", "data": {"image": "nginx"}})) == 0
}

test_missing_spec if {
	count(violations({"kind": "Deployment"})) == 0
	count(violations({"kind": "PodTemplate", "template": {}})) == 0
}

# --- denied ------------------------------------------------------------------

test_denied_latest if {
	vs := violations(pod_with("nginx:latest"))
	count(vs) == 1
	some v in vs
	v.msg == latest_msg_at("spec.containers[0]")
	v.details == {"container": "app", "path": "spec.containers[0].image", "image": "nginx:latest"}
}

test_denied_no_tag if {
	msgs(pod_with("busybox")) == {`latest-tag: container "app" (spec.containers[0]) uses image "busybox" without a tag, which means latest; pin a version tag (busybox:1.2.3) or a digest (busybox@sha256:...)`}
}

test_denied_no_tag_with_registry_and_path if {
	denied("ghcr.io/org/app")
	denied("docker.io/library/nginx")
	denied("evil.example/miner:latest")
}

test_denied_registry_port_without_tag if {
	# The ":5000" is the registry's port, not a tag.
	msgs(pod_with("registry:5000/app")) == {`latest-tag: container "app" (spec.containers[0]) uses image "registry:5000/app" without a tag, which means latest; pin a version tag (registry:5000/app:1.2.3) or a digest (registry:5000/app@sha256:...)`}
	denied("localhost:5000/team/app")
}

test_denied_registry_port_with_latest if {
	denied("registry:5000/app:latest")
}

test_denied_empty_tag if {
	denied("nginx:")
}

test_denied_init_container if {
	spec := {
		"initContainers": [{"name": "init", "image": "busybox:latest"}],
		"containers": [{"name": "app", "image": "app:1"}],
	}
	msgs(workload("Pod", spec)) == {`latest-tag: init container "init" (spec.initContainers[0]) uses image "busybox:latest" with the mutable tag latest; pin a version tag or a digest (@sha256:...) instead`}
}

test_denied_ephemeral_container if {
	spec := {
		"containers": [{"name": "app", "image": "app:1"}],
		"ephemeralContainers": [{"name": "dbg", "image": "busybox"}],
	}
	msgs(workload("Pod", spec)) == {`latest-tag: ephemeral container "dbg" (spec.ephemeralContainers[0]) uses image "busybox" without a tag, which means latest; pin a version tag (busybox:1.2.3) or a digest (busybox@sha256:...)`}
}

test_denied_each_container if {
	spec := {"containers": [
		{"name": "a", "image": "a"},
		{"name": "b", "image": "b:1"},
		{"name": "c", "image": "c:latest"},
	]}
	vs := violations(workload("Pod", spec))
	{v.details.container | some v in vs} == {"a", "c"}
}

test_denied_in_deployment if {
	msgs(workload("Deployment", latest)) == {latest_msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_statefulset if {
	msgs(workload("StatefulSet", latest)) == {latest_msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_daemonset if {
	msgs(workload("DaemonSet", latest)) == {latest_msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicaset if {
	msgs(workload("ReplicaSet", latest)) == {latest_msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_job if {
	msgs(workload("Job", latest)) == {latest_msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicationcontroller if {
	msgs(workload("ReplicationController", latest)) == {latest_msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_podtemplate if {
	msgs(workload("PodTemplate", latest)) == {latest_msg_at("template.spec.containers[0]")}
}

test_denied_in_cronjob if {
	msgs(workload("CronJob", latest)) == {latest_msg_at("spec.jobTemplate.spec.template.spec.containers[0]")}
}

# --- the parser --------------------------------------------------------------

test_tag_of if {
	image_tag.tag_of("nginx") == ""
	image_tag.tag_of("nginx:1.27") == "1.27"
	image_tag.tag_of("registry:5000/app") == ""
	image_tag.tag_of("registry:5000/app:v2") == "v2"
	image_tag.tag_of("a/b/c:latest") == "latest"
	image_tag.tag_of("nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31") == ""
	image_tag.tag_of("nginx:latest@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31") == "latest"
	image_tag.tag_of("registry:5000/app@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31") == ""
}

test_an_empty_or_non_string_image_is_skipped if {
	allowed("")
	allowed(5)
	allowed(null)
}

test_denied_latest_after_several_colons if {
	denied("app:x:latest")
	allowed("registry:5000/app:x:1")
}

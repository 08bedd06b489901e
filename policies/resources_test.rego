package gitgate.resources_test

import rego.v1

import data.gitgate.resources

# --- helpers -----------------------------------------------------------------

review(obj) := {"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}, "parameters": {}}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

violations(obj) := vs if {
	vs := resources.violation with input as review(obj)
}

msgs(obj) := {v.msg | some v in violations(obj)}

# A pod with one container "app" whose resources are `r`.
pod_with(r) := workload("Pod", {"containers": [{"name": "app", "image": "app:1", "resources": r}]})

missing(r) := {v.details.missing | some v in violations(pod_with(r))}

no_memory_limit := {"requests": {"cpu": "100m"}}

memory_msg_at(path) := sprintf(`container-resources: container "app" (%s) has no memory limit; set resources.limits.memory`, [path])

cpu_msg_at(path) := sprintf(`container-resources: container "app" (%s) has no CPU request or limit; set resources.requests.cpu (or resources.limits.cpu)`, [path])

# --- allowed -----------------------------------------------------------------

test_allowed_limits_only if {
	# Like fixture 004: Kubernetes copies the limits into the unset requests.
	missing({"limits": {"cpu": "500m", "memory": "128Mi"}}) == set()
}

test_allowed_memory_limit_and_cpu_request if {
	missing({"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}}) == set()
}

test_allowed_everything_set if {
	missing({"limits": {"cpu": "1", "memory": "1536Mi"}, "requests": {"cpu": "500m", "memory": "1G"}}) == set()
}

test_allowed_numeric_quantities if {
	missing({"limits": {"cpu": 1, "memory": 1073741824}}) == set()
}

test_ephemeral_containers_are_not_checked if {
	spec := {
		"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
		"ephemeralContainers": [{"name": "dbg", "image": "busybox:1.36"}],
	}
	count(violations(workload("Pod", spec))) == 0
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod_with({})}}
	count(resources.violation) == 0 with input as inp
}

test_not_a_workload if {
	count(violations({"kind": "ResourceQuota", "spec": {"hard": {"limits.memory": "1Gi"}}})) == 0
}

test_missing_spec if {
	count(violations({"kind": "Pod"})) == 0
	count(violations({"kind": "DaemonSet", "spec": {"template": {"spec": {}}}})) == 0
}

# --- warned ------------------------------------------------------------------

test_warned_no_resources if {
	vs := violations(workload("Pod", {"containers": [{"name": "app", "image": "app:1"}]}))
	count(vs) == 2
	{v.msg | some v in vs} == {memory_msg_at("spec.containers[0]"), cpu_msg_at("spec.containers[0]")}
	{v.details | some v in vs} == {
		{"container": "app", "path": "spec.containers[0]", "missing": "limits.memory"},
		{"container": "app", "path": "spec.containers[0]", "missing": "requests.cpu"},
	}
}

test_warned_empty_or_null_resources if {
	missing({}) == {"limits.memory", "requests.cpu"}
	missing(null) == {"limits.memory", "requests.cpu"}
	missing({"limits": null, "requests": null}) == {"limits.memory", "requests.cpu"}
	missing({"limits": {}, "requests": {}}) == {"limits.memory", "requests.cpu"}
}

test_warned_memory_request_is_not_a_limit if {
	missing({"requests": {"cpu": "100m", "memory": "128Mi"}}) == {"limits.memory"}
}

test_warned_cpu_limit_without_memory_limit if {
	msgs(pod_with({"limits": {"cpu": "1"}})) == {memory_msg_at("spec.containers[0]")}
}

test_warned_memory_limit_without_cpu if {
	msgs(pod_with({"limits": {"memory": "128Mi"}})) == {cpu_msg_at("spec.containers[0]")}
	missing({"limits": {"memory": "128Mi"}, "requests": {"memory": "64Mi"}}) == {"requests.cpu"}
}

test_warned_empty_string_or_null_quantity if {
	missing({"limits": {"memory": "", "cpu": null}}) == {"limits.memory", "requests.cpu"}
}

test_warned_init_container if {
	spec := {
		"initContainers": [{"name": "init", "resources": {"limits": {"cpu": "100m"}}}],
		"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
	}
	msgs(workload("Pod", spec)) == {`container-resources: init container "init" (spec.initContainers[0]) has no memory limit; set resources.limits.memory`}
}

test_warned_each_container if {
	spec := {"containers": [
		{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
		{"name": "b", "resources": {"limits": {"cpu": "1"}}},
		{"name": "c", "resources": {"limits": {"memory": "1Gi"}}},
	]}
	vs := violations(workload("Pod", spec))
	{[v.details.container, v.details.missing] | some v in vs} == {["b", "limits.memory"], ["c", "requests.cpu"]}
}

test_warned_in_deployment if {
	msgs(workload("Deployment", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.template.spec.containers[0]")}
}

test_warned_in_statefulset if {
	msgs(workload("StatefulSet", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.template.spec.containers[0]")}
}

test_warned_in_daemonset if {
	msgs(workload("DaemonSet", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.template.spec.containers[0]")}
}

test_warned_in_replicaset if {
	msgs(workload("ReplicaSet", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.template.spec.containers[0]")}
}

test_warned_in_job if {
	msgs(workload("Job", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.template.spec.containers[0]")}
}

test_warned_in_replicationcontroller if {
	msgs(workload("ReplicationController", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.template.spec.containers[0]")}
}

test_warned_in_podtemplate if {
	msgs(workload("PodTemplate", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("template.spec.containers[0]")}
}

test_warned_in_cronjob if {
	msgs(workload("CronJob", {"containers": [{"name": "app", "resources": no_memory_limit}]})) == {memory_msg_at("spec.jobTemplate.spec.template.spec.containers[0]")}
}

# --- malformed shapes (read as unset, never as an error) ---------------------

test_warned_resources_or_sections_not_objects if {
	missing("none") == {"limits.memory", "requests.cpu"}
	missing({"limits": "1Gi", "requests": ["cpu"]}) == {"limits.memory", "requests.cpu"}
	missing({"limits": {"memory": "1Gi"}, "requests": "1"}) == {"requests.cpu"}
}

test_zero_quantities_are_set if {
	missing({"limits": {"memory": 0, "cpu": 0}}) == set()
}

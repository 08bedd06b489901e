package gitgate.privileged_container_test

import rego.v1

import data.gitgate.privileged_container

# --- helpers -----------------------------------------------------------------

review(obj) := {"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}, "parameters": {}}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

violations(obj) := vs if {
	vs := privileged_container.violation with input as review(obj)
}

msgs(obj) := {v.msg | some v in violations(obj)}

pod(spec) := workload("Pod", spec)

privileged := {"containers": [{"name": "app", "image": "app:1", "securityContext": {"privileged": true}}]}

msg_at(path) := sprintf(`privileged-container: container "app" (%s) runs privileged; remove securityContext.privileged or set it to false`, [path])

# --- allowed -----------------------------------------------------------------

test_allowed_without_security_context if {
	count(violations(pod({"containers": [{"name": "app", "image": "app:1"}]}))) == 0
}

test_allowed_privileged_false if {
	count(violations(pod({"containers": [{"name": "app", "securityContext": {"privileged": false}}]}))) == 0
}

test_allowed_null_security_context if {
	count(violations(pod({"containers": [{"name": "app", "securityContext": null}]}))) == 0
}

test_allow_privilege_escalation_is_not_this_policy if {
	sc := {"allowPrivilegeEscalation": true, "capabilities": {"add": ["SYS_ADMIN"]}}
	count(violations(pod({"containers": [{"name": "app", "securityContext": sc}]}))) == 0
}

test_pod_level_security_context_has_no_privileged_field if {
	count(violations(pod({"securityContext": {"privileged": true}, "containers": [{"name": "app"}]}))) == 0
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod(privileged)}}
	count(privileged_container.violation) == 0 with input as inp
}

test_not_a_workload if {
	count(violations({"kind": "ConfigMap", "data": {"privileged": "true"}})) == 0
}

test_missing_spec if {
	count(violations({"kind": "Deployment"})) == 0
	count(violations({"kind": "Pod", "spec": {}})) == 0
	count(violations({"kind": "Pod", "spec": {"containers": null}})) == 0
}

# --- denied ------------------------------------------------------------------

test_denied_container if {
	vs := violations(pod(privileged))
	count(vs) == 1
	some v in vs
	v.msg == msg_at("spec.containers[0]")
	v.details == {"container": "app", "path": "spec.containers[0].securityContext.privileged"}
}

test_denied_init_container if {
	spec := {
		"initContainers": [{"name": "setup", "securityContext": {"privileged": true}}],
		"containers": [{"name": "app"}],
	}
	msgs(pod(spec)) == {`privileged-container: init container "setup" (spec.initContainers[0]) runs privileged; remove securityContext.privileged or set it to false`}
}

test_denied_ephemeral_container if {
	spec := {
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "debugger", "securityContext": {"privileged": true}}],
	}
	msgs(pod(spec)) == {`privileged-container: ephemeral container "debugger" (spec.ephemeralContainers[0]) runs privileged; remove securityContext.privileged or set it to false`}
}

test_denied_only_the_privileged_one if {
	spec := {"containers": [
		{"name": "ok", "securityContext": {"privileged": false}},
		{"name": "bad", "securityContext": {"privileged": true}},
	]}
	msgs(pod(spec)) == {`privileged-container: container "bad" (spec.containers[1]) runs privileged; remove securityContext.privileged or set it to false`}
}

test_denied_each_privileged_container if {
	spec := {"containers": [
		{"name": "a", "securityContext": {"privileged": true}},
		{"name": "b", "securityContext": {"privileged": true}},
	]}
	count(violations(pod(spec))) == 2
}

test_denied_in_deployment if {
	msgs(workload("Deployment", privileged)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_statefulset if {
	msgs(workload("StatefulSet", privileged)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_daemonset if {
	msgs(workload("DaemonSet", privileged)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicaset if {
	msgs(workload("ReplicaSet", privileged)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_job if {
	msgs(workload("Job", privileged)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicationcontroller if {
	msgs(workload("ReplicationController", privileged)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_podtemplate if {
	msgs(workload("PodTemplate", privileged)) == {msg_at("template.spec.containers[0]")}
}

test_denied_in_cronjob if {
	msgs(workload("CronJob", privileged)) == {msg_at("spec.jobTemplate.spec.template.spec.containers[0]")}
}

test_denied_on_update if {
	inp := {"review": {"operation": "UPDATE", "object": workload("Deployment", privileged), "oldObject": workload("Deployment", {"containers": [{"name": "app"}]})}}
	count(privileged_container.violation) == 1 with input as inp
}

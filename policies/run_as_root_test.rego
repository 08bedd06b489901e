package gitgate.run_as_root_test

import rego.v1

import data.gitgate.run_as_root

# --- helpers -----------------------------------------------------------------

review(obj) := {"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}, "parameters": {}}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

violations(obj) := vs if {
	vs := run_as_root.violation with input as review(obj)
}

msgs(obj) := {v.msg | some v in violations(obj)}

pod(spec) := workload("Pod", spec)

root_container := {"containers": [{"name": "app", "image": "app:1", "securityContext": {"runAsUser": 0}}]}

msg_at(path) := sprintf(`run-as-root: container "app" (%s) runs as root (securityContext.runAsUser: 0); set runAsUser to a non-zero UID and runAsNonRoot: true`, [path])

pod_level_msg := `run-as-root: container "app" (spec.containers[0]) runs as root (pod spec.securityContext.runAsUser: 0); set the pod's runAsUser to a non-zero UID and runAsNonRoot: true, or override runAsUser in the container`

# --- allowed -----------------------------------------------------------------

test_allowed_without_security_context if {
	# Like fixture 004: nothing set, the image decides; not an explicit root.
	count(violations(workload("Deployment", {"securityContext": {}, "containers": [{"name": "web", "image": "web:1"}]}))) == 0
}

test_allowed_non_root_user if {
	count(violations(pod({"containers": [{"name": "app", "securityContext": {"runAsUser": 1000}}]}))) == 0
}

test_allowed_run_as_non_root_without_user if {
	count(violations(pod({"containers": [{"name": "app", "securityContext": {"runAsNonRoot": true}}]}))) == 0
}

test_allowed_run_as_non_root_false_without_user if {
	# Only an explicit runAsUser: 0 is denied.
	count(violations(pod({"containers": [{"name": "app", "securityContext": {"runAsNonRoot": false}}]}))) == 0
}

test_allowed_group_zero_is_not_root_user if {
	count(violations(pod({"containers": [{"name": "app", "securityContext": {"runAsUser": 1000, "runAsGroup": 0}}]}))) == 0
}

test_allowed_container_overrides_pod_root if {
	spec := {
		"securityContext": {"runAsUser": 0},
		"containers": [{"name": "app", "securityContext": {"runAsUser": 1000}}],
	}
	count(violations(pod(spec))) == 0
}

test_allowed_null_security_contexts if {
	spec := {"securityContext": null, "containers": [{"name": "app", "securityContext": null}]}
	count(violations(pod(spec))) == 0
}

test_null_container_user_falls_back_to_pod if {
	spec := {"securityContext": {"runAsUser": 1000}, "containers": [{"name": "app", "securityContext": {"runAsUser": null}}]}
	count(violations(pod(spec))) == 0
}

test_null_container_user_with_root_pod_is_denied if {
	spec := {"securityContext": {"runAsUser": 0}, "containers": [{"name": "app", "securityContext": {"runAsUser": null}}]}
	msgs(pod(spec)) == {pod_level_msg}
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod(root_container)}}
	count(run_as_root.violation) == 0 with input as inp
}

test_not_a_workload if {
	count(violations({"kind": "ConfigMap", "data": {"runAsUser": "0"}})) == 0
}

test_missing_spec if {
	count(violations({"kind": "Pod"})) == 0
	count(violations({"kind": "Job", "spec": {"template": null}})) == 0
}

# --- denied ------------------------------------------------------------------

test_denied_container_run_as_user_zero if {
	vs := violations(pod(root_container))
	count(vs) == 1
	some v in vs
	v.msg == msg_at("spec.containers[0]")
	v.details == {"container": "app", "path": "spec.containers[0].securityContext.runAsUser", "runAsUser": 0}
}

test_denied_even_with_run_as_non_root if {
	# The kubelet would refuse to start it; it is still an explicit root.
	spec := {"containers": [{"name": "app", "securityContext": {"runAsUser": 0, "runAsNonRoot": true}}]}
	msgs(pod(spec)) == {msg_at("spec.containers[0]")}
}

test_denied_container_root_overrides_pod_non_root if {
	spec := {
		"securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
		"containers": [{"name": "app", "securityContext": {"runAsUser": 0}}],
	}
	msgs(pod(spec)) == {msg_at("spec.containers[0]")}
}

test_denied_pod_level_root if {
	spec := {"securityContext": {"runAsUser": 0}, "containers": [{"name": "app"}]}
	msgs(pod(spec)) == {pod_level_msg}
}

test_denied_pod_level_root_with_empty_container_context if {
	spec := {"securityContext": {"runAsUser": 0}, "containers": [{"name": "app", "securityContext": {"runAsNonRoot": false}}]}
	msgs(pod(spec)) == {pod_level_msg}
}

test_pod_level_root_only_for_containers_that_do_not_override if {
	spec := {
		"securityContext": {"runAsUser": 0},
		"containers": [
			{"name": "safe", "securityContext": {"runAsUser": 1000}},
			{"name": "app"},
		],
	}
	vs := violations(pod(spec))
	count(vs) == 1
	some v in vs
	v.details.container == "app"
	# The finding points at the pod's runAsUser, the line to change.
	v.details.path == "spec.securityContext.runAsUser"
}

test_pod_level_root_in_deployment if {
	spec := {"securityContext": {"runAsUser": 0}, "containers": [{"name": "app"}]}
	msgs(workload("Deployment", spec)) == {`run-as-root: container "app" (spec.template.spec.containers[0]) runs as root (pod spec.template.spec.securityContext.runAsUser: 0); set the pod's runAsUser to a non-zero UID and runAsNonRoot: true, or override runAsUser in the container`}
}

test_denied_init_container if {
	spec := {
		"initContainers": [{"name": "chown", "securityContext": {"runAsUser": 0}}],
		"containers": [{"name": "app", "securityContext": {"runAsUser": 1000}}],
	}
	msgs(pod(spec)) == {`run-as-root: init container "chown" (spec.initContainers[0]) runs as root (securityContext.runAsUser: 0); set runAsUser to a non-zero UID and runAsNonRoot: true`}
}

test_denied_ephemeral_container if {
	spec := {
		"containers": [{"name": "app", "securityContext": {"runAsUser": 1000}}],
		"ephemeralContainers": [{"name": "dbg", "securityContext": {"runAsUser": 0}}],
	}
	msgs(pod(spec)) == {`run-as-root: ephemeral container "dbg" (spec.ephemeralContainers[0]) runs as root (securityContext.runAsUser: 0); set runAsUser to a non-zero UID and runAsNonRoot: true`}
}

test_pod_level_root_applies_to_every_list if {
	spec := {
		"securityContext": {"runAsUser": 0},
		"initContainers": [{"name": "init"}],
		"containers": [{"name": "app"}],
		"ephemeralContainers": [{"name": "dbg"}],
	}
	count(violations(pod(spec))) == 3
}

test_denied_in_deployment if {
	msgs(workload("Deployment", root_container)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_statefulset if {
	msgs(workload("StatefulSet", root_container)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_daemonset if {
	msgs(workload("DaemonSet", root_container)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicaset if {
	msgs(workload("ReplicaSet", root_container)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_job if {
	msgs(workload("Job", root_container)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_replicationcontroller if {
	msgs(workload("ReplicationController", root_container)) == {msg_at("spec.template.spec.containers[0]")}
}

test_denied_in_podtemplate if {
	msgs(workload("PodTemplate", root_container)) == {msg_at("template.spec.containers[0]")}
}

test_denied_in_cronjob if {
	msgs(workload("CronJob", root_container)) == {msg_at("spec.jobTemplate.spec.template.spec.containers[0]")}
}

package gitgate.host_namespaces_test

import rego.v1

import data.gitgate.host_namespaces

# --- helpers -----------------------------------------------------------------

review(obj) := {"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}, "parameters": {}}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

violations(obj) := vs if {
	vs := host_namespaces.violation with input as review(obj)
}

msgs(obj) := {v.msg | some v in violations(obj)}

pod(spec) := workload("Pod", spec)

app := [{"name": "app", "image": "app:1"}]

host_network := {"hostNetwork": true, "containers": app}

msg_for(path, field) := sprintf("host-namespaces: the pod spec (%s) sets %s: true; remove %s or set it to false", [path, field, field])

# --- allowed -----------------------------------------------------------------

test_allowed_without_host_fields if {
	count(violations(pod({"containers": app}))) == 0
}

test_allowed_all_false if {
	count(violations(pod({"hostNetwork": false, "hostPID": false, "hostIPC": false, "containers": app}))) == 0
}

test_allowed_null_values if {
	count(violations(pod({"hostNetwork": null, "hostPID": null, "containers": app}))) == 0
}

test_other_host_fields_are_not_this_policy if {
	# hostUsers: true only means no user namespace (the default); hostname is just a name.
	count(violations(pod({"hostUsers": true, "hostname": "node-1", "containers": app}))) == 0
}

test_container_level_fields_are_ignored if {
	# hostNetwork is a pod field; inside a container it means nothing.
	count(violations(pod({"containers": [{"name": "app", "hostNetwork": true}]}))) == 0
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod(host_network)}}
	count(host_namespaces.violation) == 0 with input as inp
}

test_not_a_workload if {
	count(violations({"kind": "Service", "spec": {"hostNetwork": true}})) == 0
}

test_missing_spec if {
	count(violations({"kind": "Pod"})) == 0
	count(violations({"kind": "Deployment", "spec": {"template": {}}})) == 0
	count(violations({"kind": "CronJob", "spec": null})) == 0
}

# --- denied ------------------------------------------------------------------

test_denied_host_network if {
	vs := violations(pod(host_network))
	count(vs) == 1
	some v in vs
	v.msg == "host-namespaces: the pod spec (spec) sets hostNetwork: true; remove hostNetwork or set it to false"
	v.details == {"field": "hostNetwork", "path": "spec"}
}

test_denied_host_pid if {
	msgs(pod({"hostPID": true, "containers": app})) == {msg_for("spec", "hostPID")}
}

test_denied_host_ipc if {
	msgs(pod({"hostIPC": true, "containers": app})) == {msg_for("spec", "hostIPC")}
}

test_denied_all_three if {
	vs := violations(pod({"hostNetwork": true, "hostPID": true, "hostIPC": true, "containers": app}))
	count(vs) == 3
	{v.details.field | some v in vs} == {"hostNetwork", "hostPID", "hostIPC"}
}

test_denied_without_containers if {
	count(violations(pod({"hostPID": true}))) == 1
}

test_init_and_ephemeral_containers_do_not_matter if {
	spec := {
		"hostIPC": true,
		"initContainers": [{"name": "init"}],
		"containers": app,
		"ephemeralContainers": [{"name": "dbg"}],
	}
	msgs(pod(spec)) == {msg_for("spec", "hostIPC")}
}

test_denied_in_deployment if {
	msgs(workload("Deployment", host_network)) == {msg_for("spec.template.spec", "hostNetwork")}
}

test_denied_in_statefulset if {
	msgs(workload("StatefulSet", host_network)) == {msg_for("spec.template.spec", "hostNetwork")}
}

test_denied_in_daemonset if {
	msgs(workload("DaemonSet", host_network)) == {msg_for("spec.template.spec", "hostNetwork")}
}

test_denied_in_replicaset if {
	msgs(workload("ReplicaSet", host_network)) == {msg_for("spec.template.spec", "hostNetwork")}
}

test_denied_in_job if {
	msgs(workload("Job", host_network)) == {msg_for("spec.template.spec", "hostNetwork")}
}

test_denied_in_replicationcontroller if {
	msgs(workload("ReplicationController", host_network)) == {msg_for("spec.template.spec", "hostNetwork")}
}

test_denied_in_podtemplate if {
	msgs(workload("PodTemplate", host_network)) == {msg_for("template.spec", "hostNetwork")}
}

test_denied_in_cronjob if {
	msgs(workload("CronJob", host_network)) == {msg_for("spec.jobTemplate.spec.template.spec", "hostNetwork")}
}

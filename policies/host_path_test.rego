package gitgate.host_path_test

import rego.v1

import data.gitgate.host_path

# --- helpers -----------------------------------------------------------------

review(obj) := {"review": {"operation": "CREATE", "kind": {"kind": obj.kind}, "object": obj}, "parameters": {}}

workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

violations(obj) := vs if {
	vs := host_path.violation with input as review(obj)
}

msgs(obj) := {v.msg | some v in violations(obj)}

pod(spec) := workload("Pod", spec)

app := [{"name": "app", "image": "app:1"}]

docker_sock := {
	"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}],
	"containers": [{"name": "app", "volumeMounts": [{"name": "sock", "mountPath": "/var/run/docker.sock"}]}],
}

msg_at(path) := sprintf(`host-path: volume "sock" (%s) mounts the node's path "/var/run/docker.sock"; use an emptyDir, configMap, secret or persistentVolumeClaim volume instead of hostPath`, [path])

# --- allowed -----------------------------------------------------------------

test_allowed_without_volumes if {
	count(violations(pod({"containers": app}))) == 0
}

test_allowed_other_volume_types if {
	spec := {"containers": app, "volumes": [
		{"name": "tmp", "emptyDir": {}},
		{"name": "cfg", "configMap": {"name": "cfg"}},
		{"name": "sec", "secret": {"secretName": "s"}},
		{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
		{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
	]}
	count(violations(pod(spec))) == 0
}

test_allowed_null_volumes if {
	count(violations(pod({"containers": app, "volumes": null}))) == 0
}

test_allowed_null_host_path if {
	count(violations(pod({"containers": app, "volumes": [{"name": "v", "hostPath": null, "emptyDir": {}}]}))) == 0
}

test_delete_with_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": pod(docker_sock)}}
	count(host_path.violation) == 0 with input as inp
}

test_persistent_volume_is_not_a_workload if {
	pv := {"kind": "PersistentVolume", "spec": {"hostPath": {"path": "/data"}, "volumes": [{"hostPath": {"path": "/"}}]}}
	count(violations(pv)) == 0
}

test_missing_spec if {
	count(violations({"kind": "Pod"})) == 0
	count(violations({"kind": "StatefulSet", "spec": {}})) == 0
}

# --- denied ------------------------------------------------------------------

test_denied_host_path if {
	vs := violations(pod(docker_sock))
	count(vs) == 1
	some v in vs
	v.msg == msg_at("spec.volumes[0]")
	v.details == {"volume": "sock", "hostPath": "/var/run/docker.sock", "path": "spec.volumes[0].hostPath"}
}

test_denied_even_when_not_mounted if {
	# An unmounted hostPath volume is still a hostPath the pod asks the node for.
	spec := {"containers": app, "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
	msgs(pod(spec)) == {`host-path: volume "root" (spec.volumes[0]) mounts the node's path "/"; use an emptyDir, configMap, secret or persistentVolumeClaim volume instead of hostPath`}
}

test_denied_host_path_without_path if {
	spec := {"containers": app, "volumes": [{"name": "odd", "hostPath": {}}]}
	msgs(pod(spec)) == {`host-path: volume "odd" (spec.volumes[0]) mounts the node's path ""; use an emptyDir, configMap, secret or persistentVolumeClaim volume instead of hostPath`}
}

test_denied_each_host_path_volume if {
	spec := {"containers": app, "volumes": [
		{"name": "a", "hostPath": {"path": "/etc"}},
		{"name": "tmp", "emptyDir": {}},
		{"name": "b", "hostPath": {"path": "/var/lib/kubelet"}},
	]}
	vs := violations(pod(spec))
	{v.details.path | some v in vs} == {"spec.volumes[0].hostPath", "spec.volumes[2].hostPath"}
}

test_denied_when_used_by_init_container if {
	spec := {
		"initContainers": [{"name": "init", "volumeMounts": [{"name": "sock", "mountPath": "/s"}]}],
		"containers": app,
		"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}],
	}
	msgs(pod(spec)) == {msg_at("spec.volumes[0]")}
}

test_denied_when_used_by_ephemeral_container if {
	spec := {
		"containers": app,
		"ephemeralContainers": [{"name": "dbg", "volumeMounts": [{"name": "sock", "mountPath": "/s"}]}],
		"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}],
	}
	msgs(pod(spec)) == {msg_at("spec.volumes[0]")}
}

test_denied_in_deployment if {
	msgs(workload("Deployment", docker_sock)) == {msg_at("spec.template.spec.volumes[0]")}
}

test_denied_in_statefulset if {
	msgs(workload("StatefulSet", docker_sock)) == {msg_at("spec.template.spec.volumes[0]")}
}

test_denied_in_daemonset if {
	msgs(workload("DaemonSet", docker_sock)) == {msg_at("spec.template.spec.volumes[0]")}
}

test_denied_in_replicaset if {
	msgs(workload("ReplicaSet", docker_sock)) == {msg_at("spec.template.spec.volumes[0]")}
}

test_denied_in_job if {
	msgs(workload("Job", docker_sock)) == {msg_at("spec.template.spec.volumes[0]")}
}

test_denied_in_replicationcontroller if {
	msgs(workload("ReplicationController", docker_sock)) == {msg_at("spec.template.spec.volumes[0]")}
}

test_denied_in_podtemplate if {
	msgs(workload("PodTemplate", docker_sock)) == {msg_at("template.spec.volumes[0]")}
}

test_denied_in_cronjob if {
	msgs(workload("CronJob", docker_sock)) == {msg_at("spec.jobTemplate.spec.template.spec.volumes[0]")}
}

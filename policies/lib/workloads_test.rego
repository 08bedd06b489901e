package gitgate.lib.workloads_test

import rego.v1

import data.gitgate.lib.workloads

# An admission-style input around one object.
review(obj) := {"review": {"operation": "CREATE", "object": obj}}

# An object of the given kind whose pod spec is `spec`.
workload(kind, spec) := {"kind": kind, "spec": spec} if kind == "Pod"

workload(kind, spec) := {"kind": kind, "spec": {"template": {"spec": spec}}} if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

workload(kind, spec) := {"kind": kind, "template": {"spec": spec}} if kind == "PodTemplate"

workload(kind, spec) := {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}} if kind == "CronJob"

one_container := {"containers": [{"name": "app", "image": "app:1"}]}

paths_for(kind) := paths if {
	cs := workloads.containers with input as review(workload(kind, one_container))
	paths := {e.path | some e in cs}
}

spec_path_for(kind) := path if {
	path := workloads.pod_spec_path with input as review(workload(kind, one_container))
}

test_pod if {
	spec_path_for("Pod") == "spec"
	paths_for("Pod") == {"spec.containers[0]"}
}

test_deployment if {
	spec_path_for("Deployment") == "spec.template.spec"
	paths_for("Deployment") == {"spec.template.spec.containers[0]"}
}

test_statefulset if {
	paths_for("StatefulSet") == {"spec.template.spec.containers[0]"}
}

test_daemonset if {
	paths_for("DaemonSet") == {"spec.template.spec.containers[0]"}
}

test_replicaset if {
	paths_for("ReplicaSet") == {"spec.template.spec.containers[0]"}
}

test_job if {
	paths_for("Job") == {"spec.template.spec.containers[0]"}
}

test_replicationcontroller if {
	paths_for("ReplicationController") == {"spec.template.spec.containers[0]"}
}

test_podtemplate if {
	spec_path_for("PodTemplate") == "template.spec"
	paths_for("PodTemplate") == {"template.spec.containers[0]"}
}

test_cronjob if {
	spec_path_for("CronJob") == "spec.jobTemplate.spec.template.spec"
	paths_for("CronJob") == {"spec.jobTemplate.spec.template.spec.containers[0]"}
}

test_pod_spec_is_returned if {
	spec := workloads.pod_spec with input as review(workload("CronJob", {"hostPID": true}))
	spec == {"hostPID": true}
}

test_all_container_lists if {
	spec := {
		"initContainers": [{"name": "init", "image": "i:1"}],
		"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
		"ephemeralContainers": [{"name": "dbg", "image": "d:1"}],
	}
	cs := workloads.containers with input as review(workload("Pod", spec))
	got := {[e.name, e.field, e.label, e.index, e.path] | some e in cs}
	got == {
		["init", "initContainers", "init container", 0, "spec.initContainers[0]"],
		["a", "containers", "container", 0, "spec.containers[0]"],
		["b", "containers", "container", 1, "spec.containers[1]"],
		["dbg", "ephemeralContainers", "ephemeral container", 0, "spec.ephemeralContainers[0]"],
	}
}

test_container_object_is_returned if {
	cs := workloads.containers with input as review(workload("Job", one_container))
	some e in cs
	e.container == {"name": "app", "image": "app:1"}
}

test_delete_null_object if {
	inp := {"review": {"operation": "DELETE", "kind": {"kind": "Pod"}, "object": null, "oldObject": workload("Pod", one_container)}}
	count(workloads.containers) == 0 with input as inp
	count(workloads.volumes) == 0 with input as inp
	not workloads.pod_spec with input as inp
	not workloads.pod_spec_path with input as inp
}

test_no_review if {
	count(workloads.containers) == 0 with input as {}
}

test_not_a_workload if {
	inp := review({"kind": "ConfigMap", "data": {"containers": "x"}})
	count(workloads.containers) == 0 with input as inp
	not workloads.is_workload with input as inp
}

test_scale_subresource_is_not_a_workload if {
	inp := {"review": {"kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "object": {"kind": "Scale", "spec": {"replicas": 5}}}}
	count(workloads.containers) == 0 with input as inp
}

test_kind_from_request_when_object_has_none if {
	inp := {"review": {"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "object": {"spec": {"template": {"spec": one_container}}}}}
	workloads.object_kind == "Deployment" with input as inp
	workloads.is_workload with input as inp
	cs := workloads.containers with input as inp
	paths := {e.path | some e in cs}
	paths == {"spec.template.spec.containers[0]"}
}

test_object_kind_wins_over_request_kind if {
	inp := {"review": {"kind": {"kind": "Deployment"}, "object": workload("Pod", one_container)}}
	workloads.object_kind == "Pod" with input as inp
}

test_missing_spec if {
	count(workloads.containers) == 0 with input as review({"kind": "Deployment"})
	count(workloads.containers) == 0 with input as review({"kind": "Deployment", "spec": {}})
	count(workloads.containers) == 0 with input as review({"kind": "Deployment", "spec": {"template": {}}})
	count(workloads.containers) == 0 with input as review({"kind": "CronJob", "spec": {"jobTemplate": {}}})
	count(workloads.containers) == 0 with input as review({"kind": "Pod", "spec": null})
}

test_malformed_spec if {
	count(workloads.containers) == 0 with input as review({"kind": "Deployment", "spec": {"template": "oops"}})
	count(workloads.containers) == 0 with input as review({"kind": "Deployment", "spec": "oops"})
	count(workloads.containers) == 0 with input as review({"kind": "Pod", "spec": {"containers": "oops"}})
	count(workloads.containers) == 0 with input as review({"kind": "Pod", "spec": {"containers": null}})
}

test_non_object_container_is_skipped if {
	inp := review(workload("Pod", {"containers": [null, "x", {"name": "ok"}]}))
	cs := workloads.containers with input as inp
	paths := {e.path | some e in cs}
	paths == {"spec.containers[2]"}
}

test_container_without_name if {
	cs := workloads.containers with input as review(workload("Pod", {"containers": [{"image": "x:1"}]}))
	some e in cs
	e.name == ""
}

test_volumes if {
	spec := {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/"}}]}
	vs := workloads.volumes with input as review(workload("StatefulSet", spec))
	got := {[v.name, v.path] | some v in vs}
	got == {["a", "spec.template.spec.volumes[0]"], ["b", "spec.template.spec.volumes[1]"]}
}

test_volumes_null if {
	count(workloads.volumes) == 0 with input as review(workload("Pod", {"volumes": null}))
}

test_pod_spec_of_any_object if {
	workloads.pod_spec_of(workload("DaemonSet", {"hostNetwork": true})) == {"hostNetwork": true}
	workloads.pod_spec_of(workload("PodTemplate", {"hostIPC": true})) == {"hostIPC": true}
	not workloads.pod_spec_of({"kind": "Service", "spec": {}})
	not workloads.pod_spec_of(null)
}

test_security_context if {
	workloads.security_context({"securityContext": {"runAsUser": 1}}) == {"runAsUser": 1}
	workloads.security_context({"securityContext": null}) == {}
	workloads.security_context({}) == {}
}

test_image_of if {
	workloads.image_of({"image": "nginx"}) == "nginx"
	not workloads.image_of({"image": ""})
	not workloads.image_of({"image": null})
	not workloads.image_of({})
}

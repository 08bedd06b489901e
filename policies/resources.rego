# METADATA
# title: Container resources
# description: A container without a memory limit can take the node's memory and get other pods evicted, and one without a CPU request is scheduled as if it used no CPU. Warns about any container or init container without resources.limits.memory, or without a CPU request or limit (Kubernetes uses the limit as the request when the request is unset). Ephemeral containers cannot set resources and are not checked.
# custom:
#   name: container-resources
#   enforcement: warn
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {}
package gitgate.resources

import rego.v1

import data.gitgate.lib.workloads

violation contains {"msg": msg, "details": {"container": e.name, "path": e.path, "missing": "limits.memory"}} if {
	some e in workloads.containers
	e.field != "ephemeralContainers"
	object.get(e.container, ["resources", "limits", "memory"], null) in {null, ""}
	msg := sprintf(
		"container-resources: %s %q (%s) has no memory limit; set resources.limits.memory",
		[e.label, e.name, e.path],
	)
}

violation contains {"msg": msg, "details": {"container": e.name, "path": e.path, "missing": "requests.cpu"}} if {
	some e in workloads.containers
	e.field != "ephemeralContainers"
	object.get(e.container, ["resources", "requests", "cpu"], null) in {null, ""}
	object.get(e.container, ["resources", "limits", "cpu"], null) in {null, ""}
	msg := sprintf(
		"container-resources: %s %q (%s) has no CPU request or limit; set resources.requests.cpu (or resources.limits.cpu)",
		[e.label, e.name, e.path],
	)
}

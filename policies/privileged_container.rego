# METADATA
# title: Privileged containers
# description: A privileged container has every capability of the node and access to its devices; escaping it compromises the node. Denies securityContext.privileged true on any container, init container or ephemeral container.
# custom:
#   name: privileged-container
#   enforcement: deny
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {}
package gitgate.privileged_container

import rego.v1

import data.gitgate.lib.workloads

violation contains {"msg": msg, "details": {"container": e.name, "path": concat(".", [e.path, "securityContext.privileged"])}} if {
	some e in workloads.containers
	e.container.securityContext.privileged == true
	msg := sprintf(
		"privileged-container: %s %q (%s) runs privileged; remove securityContext.privileged or set it to false",
		[e.label, e.name, e.path],
	)
}

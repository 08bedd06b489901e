# METADATA
# title: Host namespaces
# description: A pod sharing the node's network, process or IPC namespace can reach the node's and other pods' traffic, processes and shared memory. Denies hostNetwork, hostPID or hostIPC set to true in the pod spec.
# custom:
#   name: host-namespaces
#   enforcement: deny
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {}
package gitgate.host_namespaces

import rego.v1

import data.gitgate.lib.workloads

violation contains {"msg": msg, "details": {"field": field, "path": workloads.pod_spec_path}} if {
	spec := workloads.pod_spec
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	spec[field] == true
	msg := sprintf(
		"host-namespaces: the pod spec (%s) sets %s: true; remove %s or set it to false",
		[workloads.pod_spec_path, field, field],
	)
}

# METADATA
# title: hostPath volumes
# description: A hostPath volume mounts a file or directory of the node into the pod and can expose node credentials, the container runtime socket or the whole root filesystem. Denies any volume with a hostPath source.
# custom:
#   name: host-path
#   enforcement: deny
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {}
package gitgate.host_path

import rego.v1

import data.gitgate.lib.workloads

violation contains {"msg": msg, "details": {"volume": v.name, "hostPath": host_path, "path": concat(".", [v.path, "hostPath"])}} if {
	some v in workloads.volumes
	hp := object.get(v.volume, "hostPath", null)
	hp != null
	host_path := path_of(hp)
	msg := sprintf(
		"host-path: volume %q (%s) mounts the node's path %q; use an emptyDir, configMap, secret or persistentVolumeClaim volume instead of hostPath",
		[v.name, v.path, host_path],
	)
}

# The hostPath's path, or "" when it is missing.
path_of(hp) := p if {
	is_object(hp)
	p := object.get(hp, "path", "")
	is_string(p)
} else := ""

# METADATA
# title: Containers running as root
# description: A process running as UID 0 in a container is root on the node once it escapes, and can write to anything mounted. Denies any container whose effective securityContext.runAsUser is 0 (the container's value, else the pod's). A container that sets no user at all runs as the image's user and is not denied.
# custom:
#   name: run-as-root
#   enforcement: deny
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {}
package gitgate.run_as_root

import rego.v1

import data.gitgate.lib.workloads

# A container's own runAsUser takes precedence over the pod's.
violation contains {"msg": msg, "details": {"container": e.name, "path": concat(".", [e.path, "securityContext.runAsUser"]), "runAsUser": 0}} if {
	some e in workloads.containers
	e.container.securityContext.runAsUser == 0
	msg := sprintf(
		"run-as-root: %s %q (%s) runs as root (securityContext.runAsUser: 0); set runAsUser to a non-zero UID and runAsNonRoot: true",
		[e.label, e.name, e.path],
	)
}

violation contains {"msg": msg, "details": {"container": e.name, "path": concat(".", [workloads.pod_spec_path, "securityContext.runAsUser"]), "runAsUser": 0}} if {
	workloads.pod_spec.securityContext.runAsUser == 0
	some e in workloads.containers
	not sets_run_as_user(e.container)
	msg := sprintf(
		"run-as-root: %s %q (%s) runs as root (pod %s.securityContext.runAsUser: 0); set the pod's runAsUser to a non-zero UID and runAsNonRoot: true, or override runAsUser in the container",
		[e.label, e.name, e.path, workloads.pod_spec_path],
	)
}

# Whether a container sets its own runAsUser (null counts as unset). Direct references keep
# the common case (nothing set) free of function calls.
sets_run_as_user(c) if c.securityContext.runAsUser != null

# Helpers shared by gitgate's built-in policies: where the pod spec of a
# workload object lives, and every container in it with a readable path.
#
# The object under review is input.review.object (null on DELETE, in which
# case every rule here is undefined and the policies report nothing).
#
# Written for regorus as well as OPA: every builtin gets arguments of the
# type it expects (regorus raises an error instead of returning undefined),
# and object.get is only ever called on objects.
package gitgate.lib.workloads

import rego.v1

# Kinds whose pod spec is at spec.template.spec.
template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

# Every kind this library understands.
workload_kinds := template_kinds | {"Pod", "PodTemplate", "CronJob"}

# The three lists of containers in a pod spec, with the words used in messages.
container_lists := [
	{"field": "containers", "label": "container"},
	{"field": "initContainers", "label": "init container"},
	{"field": "ephemeralContainers", "label": "ephemeral container"},
]

# The object under review; undefined when it is null or absent (DELETE).
review_object := obj if {
	obj := input.review.object
	is_object(obj)
}

# The object's kind: its own "kind" field, else the kind of the request.
object_kind := k if {
	k := object.get(review_object, "kind", "")
	is_string(k)
	k != ""
} else := k if {
	k := input.review.kind.kind
	is_string(k)
}

is_workload if object_kind in workload_kinds

# Path of the pod spec inside an object of the given kind, as written in messages.
pod_spec_path_for(kind) := "spec" if kind == "Pod"

pod_spec_path_for(kind) := "spec.template.spec" if kind in template_kinds

pod_spec_path_for(kind) := "template.spec" if kind == "PodTemplate"

pod_spec_path_for(kind) := "spec.jobTemplate.spec.template.spec" if kind == "CronJob"

# The same path as a list of keys, for object.get.
pod_spec_keys_for(kind) := split(pod_spec_path_for(kind), ".")

# The pod spec of any object (not only the one under review); undefined when
# the kind is not a workload kind or the spec is missing or not an object.
pod_spec_of(obj) := spec if {
	is_object(obj)
	kind := object.get(obj, "kind", "")
	is_string(kind)
	spec := object.get(obj, pod_spec_keys_for(kind), null)
	is_object(spec)
}

# The pod spec of the object under review, and where it is.
pod_spec := spec if {
	spec := object.get(review_object, pod_spec_keys_for(object_kind), null)
	is_object(spec)
}

pod_spec_path := pod_spec_path_for(object_kind) if is_object(pod_spec)

# Every container of the object under review:
#   {"container": <the container object>, "name": <its name or "">,
#    "field": "containers" | "initContainers" | "ephemeralContainers",
#    "label": "container" | "init container" | "ephemeral container",
#    "index": <position in its list>, "path": "spec.template.spec.containers[0]"}
containers contains entry if {
	spec := pod_spec
	some list in container_lists
	items := object.get(spec, list.field, [])
	is_array(items)
	some i, c in items
	is_object(c)
	entry := {
		"container": c,
		"name": object.get(c, "name", ""),
		"field": list.field,
		"label": list.label,
		"index": i,
		"path": sprintf("%s.%s[%d]", [pod_spec_path, list.field, i]),
	}
}

# Every volume of the object under review: {"volume", "name", "index", "path"}.
volumes contains entry if {
	spec := pod_spec
	items := object.get(spec, "volumes", [])
	is_array(items)
	some i, v in items
	is_object(v)
	entry := {
		"volume": v,
		"name": name_of(v),
		"index": i,
		"path": sprintf("%s.volumes[%d]", [pod_spec_path, i]),
	}
}

# The "name" field of an object, or "" when it is missing or not a string.
name_of(x) := n if {
	n := object.get(x, "name", "")
	is_string(n)
} else := ""

# The securityContext of a container or pod spec; {} when missing or null.
security_context(x) := sc if {
	sc := object.get(x, "securityContext", {})
	is_object(sc)
} else := {}

# The image of a container; undefined when missing, empty or not a string.
image_of(c) := img if {
	img := object.get(c, "image", "")
	is_string(img)
	img != ""
}

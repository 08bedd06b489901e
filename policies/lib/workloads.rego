# Helpers shared by gitgate's built-in policies: where the pod spec of a
# workload object lives, and every container in it with a readable path.
#
# The object under review is input.review.object (null on DELETE, in which
# case every rule here is undefined and the policies report nothing).
#
# Written for regorus as well as OPA: every builtin gets arguments of the
# type it expects (regorus raises an error instead of returning undefined),
# and object.get is only ever called on objects.
#
# Written for speed on regorus's compiled VM too, where every reference to
# another rule or function is a call that costs more than a builtin (even when
# the rule's value is already known): the path every container of every
# workload takes reads a constant table and one rule per object, not a chain
# of helpers. benches/policy.rs measures it.
package gitgate.lib.workloads

import rego.v1

# Kinds whose pod spec is at spec.template.spec.
template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

# Every kind this library understands.
workload_kinds := template_kinds | {"Pod", "PodTemplate", "CronJob"}

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

# Where the pod spec is in an object of each workload kind: the path written in
# messages, and the same path as keys for object.get.
pod_spec_locations := {
	"Pod": {"path": "spec", "keys": ["spec"]},
	"PodTemplate": {"path": "template.spec", "keys": ["template", "spec"]},
	"CronJob": {"path": "spec.jobTemplate.spec.template.spec", "keys": ["spec", "jobTemplate", "spec", "template", "spec"]},
	"Deployment": {"path": "spec.template.spec", "keys": ["spec", "template", "spec"]},
	"StatefulSet": {"path": "spec.template.spec", "keys": ["spec", "template", "spec"]},
	"DaemonSet": {"path": "spec.template.spec", "keys": ["spec", "template", "spec"]},
	"ReplicaSet": {"path": "spec.template.spec", "keys": ["spec", "template", "spec"]},
	"Job": {"path": "spec.template.spec", "keys": ["spec", "template", "spec"]},
	"ReplicationController": {"path": "spec.template.spec", "keys": ["spec", "template", "spec"]},
}

# Path of the pod spec inside an object of the given kind, as written in messages.
pod_spec_path_for(kind) := pod_spec_locations[kind].path

# The same path as a list of keys, for object.get.
pod_spec_keys_for(kind) := pod_spec_locations[kind].keys

# The pod spec of any object (not only the one under review); undefined when
# the kind is not a workload kind or the spec is missing or not an object.
pod_spec_of(obj) := spec if {
	is_object(obj)
	kind := object.get(obj, "kind", "")
	is_string(kind)
	spec := object.get(obj, pod_spec_locations[kind].keys, null)
	is_object(spec)
}

# The pod spec of the object under review and where it is: {"spec", "path"}.
pod_spec_location := {"spec": spec, "path": location.path} if {
	location := pod_spec_locations[object_kind]
	spec := object.get(review_object, location.keys, null)
	is_object(spec)
}

# The pod spec of the object under review, and where it is.
pod_spec := pod_spec_location.spec

pod_spec_path := pod_spec_location.path

# Every container of the object under review:
#   {"container": <the container object>, "name": <its name or "">,
#    "field": "containers" | "initContainers" | "ephemeralContainers",
#    "label": "container" | "init container" | "ephemeral container",
#    "index": <position in its list>, "path": "spec.template.spec.containers[0]"}
containers contains entry if {
	location := pod_spec_location
	some field, label in {"containers": "container", "initContainers": "init container", "ephemeralContainers": "ephemeral container"}
	items := location.spec[field]
	is_array(items)
	some i, c in items
	is_object(c)
	entry := {
		"container": c,
		"name": object.get(c, "name", ""),
		"field": field,
		"label": label,
		"index": i,
		"path": sprintf("%s.%s[%d]", [location.path, field, i]),
	}
}

# Every volume of the object under review: {"volume", "name", "index", "path"}.
volumes contains entry if {
	location := pod_spec_location
	items := location.spec.volumes
	is_array(items)
	some i, v in items
	is_object(v)
	entry := {
		"volume": v,
		"name": name_of(v),
		"index": i,
		"path": sprintf("%s.volumes[%d]", [location.path, i]),
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

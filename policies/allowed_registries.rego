# METADATA
# title: Allowed registries
# description: Images from an unknown registry may be unscanned, unsigned or malicious. Denies any image that does not start with one of the prefixes in parameters.registries (for example ghcr.io/my-org/); a prefix is matched against the image as written and against its full docker.io form, so docker.io/library/ allows nginx. Reports nothing while the list is empty.
# custom:
#   name: allowed-registries
#   enforcement: deny
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {} # registries: a list of image prefixes (none by default: nothing is denied)
package gitgate.allowed_registries

import rego.v1

import data.gitgate.lib.workloads

# The configured prefixes (strings only); empty when absent. An empty string
# would allow every image, as would an empty list.
registries := [p | some p in configured; is_string(p)]

configured := r if {
	r := input.parameters.registries
	is_array(r)
} else := []

violation contains {"msg": msg, "details": {"container": e.name, "path": concat(".", [e.path, "image"]), "image": img}} if {
	count(registries) > 0
	some e in workloads.containers
	img := workloads.image_of(e.container)
	not allowed(img)
	msg := sprintf(
		"allowed-registries: %s %q (%s) uses image %q, which is not from an allowed registry; use an image starting with one of: %s",
		[e.label, e.name, e.path, img, concat(", ", registries)],
	)
}

allowed(img) if {
	some prefix in registries
	startswith(img, prefix)
}

allowed(img) if {
	some prefix in registries
	startswith(normalized(img), prefix)
}

# The full reference of an image as Docker resolves it:
#   nginx                  -> docker.io/library/nginx
#   bitnami/redis:7        -> docker.io/bitnami/redis:7
#   docker.io/nginx        -> docker.io/library/nginx
#   index.docker.io/x/y    -> docker.io/x/y
#   ghcr.io/org/app, registry:5000/app, localhost/app -> unchanged
# The first path component is a registry when it contains "." or ":" or is "localhost".
# One definition with else branches: a function defined several times could conflict, which
# regorus's compiled VM would not report, so gitgate would evaluate this on the interpreter.
normalized(img) := concat("", ["docker.io/library/", img]) if {
	not contains(img, "/")
} else := n if {
	parts := split(img, "/")
	not is_registry(parts[0])
	n := docker_io(img)
} else := n if {
	parts := split(img, "/")
	parts[0] in {"docker.io", "index.docker.io"}
	n := docker_io(concat("/", array.slice(parts, 1, count(parts))))
} else := img

# A repository path on Docker Hub; single names are under library/.
docker_io(path) := concat("", ["docker.io/library/", path]) if {
	not contains(path, "/")
} else := concat("", ["docker.io/", path])

is_registry(component) := true if {
	contains(component, ".")
} else := true if {
	contains(component, ":")
} else := true if {
	component == "localhost"
} else := false

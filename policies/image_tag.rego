# METADATA
# title: Images without a pinned tag
# description: An image with the tag latest, or with no tag (which means latest), can change under the same name, so what runs is not what was reviewed and a rollback may not restore the previous version. Denies such images; a version tag or a digest (@sha256) is required.
# custom:
#   name: latest-tag
#   enforcement: deny
#   match:
#     kinds:
#     - apiGroups: ["", "apps", "batch"]
#       kinds: ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController", "PodTemplate"]
#   parameters: {}
package gitgate.image_tag

import rego.v1

import data.gitgate.lib.workloads

violation contains {"msg": msg, "details": {"container": e.name, "path": concat(".", [e.path, "image"]), "image": img}} if {
	some e in workloads.containers
	img := e.container.image
	is_string(img)
	img != ""
	not has_digest(img)
	tag := tag_of(img)
	tag in {"", "latest"}
	msg := message(e, img, tag)
}

message(e, img, "") := sprintf(
	"latest-tag: %s %q (%s) uses image %q without a tag, which means latest; pin a version tag (%s:1.2.3) or a digest (%s@sha256:...)",
	[e.label, e.name, e.path, img, img, img],
)

message(e, img, "latest") := sprintf(
	"latest-tag: %s %q (%s) uses image %q with the mutable tag latest; pin a version tag or a digest (@sha256:...) instead",
	[e.label, e.name, e.path, img],
)

# An image reference pinned by digest: name@sha256:... or name:tag@sha256:...
has_digest(img) := contains(img, "@")

# The tag of an image reference, or "" when it has none. The digest, if any,
# is dropped first; the tag is after a ":" in the last path component only: in
# registry:5000/app the ":" belongs to the registry's port and there is no tag.
tag_of(img) := tag if {
	name := split(img, "@")[0]
	parts := split(name, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	pieces := split(last, ":")
	tag := pieces[count(pieces) - 1]
} else := ""

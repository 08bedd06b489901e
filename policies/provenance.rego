# METADATA
# title: Traceable to an approved commit
# description: Refuses objects that no approved commit of the GitOps repository holds as they are (untraceable, or modified by hand), and fields that Git does not set and no API server default ever sets (privileged, hostPath, host namespaces, running as root, added capabilities). Acts only when provenance is configured (input.provenance present); before merge, input.provenance says whether the pull request's commits are approved.
# custom:
#   name: provenance
#   enforcement: deny
#   parameters: {}
package gitgate.provenance

import rego.v1

violation contains {"msg": msg, "details": {"status": p.status, "differing": p.differing}} if {
	p := input.provenance
	p.status in {"untraceable", "modified"}
	msg := sprintf("provenance: %s; %s", [p.reason, remedy])
}

# What to do about it, at the door the document came through: before merge only the pull
# request's commit signatures can make it untraceable.
remedy := "sign the pull request's commits with a trusted key" if {
	input.source.context == "premerge"
} else := "change it in Git and let the GitOps controller apply it (or use break-glass)"

violation contains {"msg": msg, "details": {"path": path}} if {
	p := input.provenance
	p.status in {"traceable", "modified"}
	some path in p.securityRelevant
	msg := sprintf("provenance: %s is set in the cluster but not in Git, and no default sets it; add it to the manifest in Git if it is intended", [path])
}

# METADATA
# title: Traceable to an approved commit
# description: Refuses objects that no approved commit of the GitOps repository holds as they are (untraceable, or modified by hand), and fields that Git does not set and no API server default ever sets (privileged, hostPath, host namespaces, running as root, added capabilities). Acts only when provenance is configured (input.provenance present), and at admission only. Before merge, gitgate check reports the pull request's unapproved commits once, for the whole pull request.
# custom:
#   name: provenance
#   enforcement: deny
#   parameters: {}
package gitgate.provenance

import rego.v1

violation contains {"msg": msg, "details": {"status": p.status, "differing": p.differing}} if {
	p := input.provenance
	not premerge
	p.status in {"untraceable", "modified"}
	msg := sprintf("provenance: %s; change it in Git and let the GitOps controller apply it (or use break-glass)", [p.reason])
}

# Before merge a document can only be untraceable because a commit of the pull request is not
# approved, and `gitgate check` already reports each such commit once, for the whole pull
# request: a finding on every file of it would repeat that. input.provenance is still there
# for policies of your own.
premerge if input.source.context == "premerge"

violation contains {"msg": msg, "details": {"path": path}} if {
	p := input.provenance
	p.status in {"traceable", "modified"}
	some path in p.securityRelevant
	msg := sprintf("provenance: %s is set in the cluster but not in Git, and no default sets it; add it to the manifest in Git if it is intended", [path])
}

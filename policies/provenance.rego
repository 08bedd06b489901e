# METADATA
# title: Traceable to an approved commit
# description: Refuses objects that no approved commit of the GitOps repository holds as they are. Untraceable (Git holds no such object), or modified (a field differs from Git, an UPDATE drifted from it, or a field is unattested, explained neither by Git, nor by an API-server default, nor by the server, a GitOps controller's tracking stamp or a configured mutation allowance, the closed world). The message names the paths. Acts only when provenance is configured (input.provenance present), and at admission only. Before merge, gitgate check reports the pull request's unapproved commits once, for the whole pull request.
# custom:
#   name: provenance
#   enforcement: deny
#   parameters: {}
package gitgate.provenance

import rego.v1

violation contains {"msg": msg, "details": details} if {
	p := input.provenance
	not premerge
	p.status in {"untraceable", "modified"}
	msg := sprintf("provenance: %s; change it in Git and let the GitOps controller apply it (or use break-glass)", [p.reason])
	details := {
		"status": p.status,
		"differing": object.get(p, "differing", []),
		"unattested": object.get(p, "unattested", []),
	}
}

# Before merge a document can only be untraceable because a commit of the pull request is not
# approved, and `gitgate check` already reports each such commit once, for the whole pull
# request: a finding on every file of it would repeat that. input.provenance is still there
# for policies of your own.
premerge if input.source.context == "premerge"

package gitgate.provenance_test

import rego.v1

import data.gitgate.provenance

verdict(status) := {"status": status, "reason": "r", "differing": [], "unattested": []}

test_traceable_passes if {
	count(provenance.violation) == 0 with input as {"provenance": verdict("traceable")}
}

test_exempt_passes if {
	count(provenance.violation) == 0 with input as {"provenance": verdict("exempt")}
}

test_untraceable_is_refused if {
	some v in provenance.violation with input as {"provenance": verdict("untraceable")}
	startswith(v.msg, "provenance: r;")
}

test_untraceable_is_refused_at_admission_only if {
	some a in provenance.violation with input as {"provenance": verdict("untraceable"), "source": {"context": "admission"}}
	contains(a.msg, "let the GitOps controller apply it")
	count(provenance.violation) == 0 with input as {"provenance": verdict("untraceable"), "source": {"context": "premerge"}}
}

test_modified_is_refused if {
	count(provenance.violation) == 1 with input as {"provenance": verdict("modified")}
}

test_unattested_fields_are_refused_with_their_paths if {
	p := {
		"status": "modified",
		"reason": "Deployment demo/web is not as approved commit 0123456789ab (web.yaml:1) holds it: sets what Git does not (unattested): spec.template.spec.initContainers[name=miner]",
		"differing": [],
		"unattested": ["spec.template.spec.initContainers[name=miner]"],
	}
	some v in provenance.violation with input as {"provenance": p}
	contains(v.msg, "spec.template.spec.initContainers[name=miner]")
	v.details.unattested == ["spec.template.spec.initContainers[name=miner]"]
}

test_an_older_verdict_shape_still_works if {
	some v in provenance.violation with input as {"provenance": {"status": "modified", "reason": "r"}}
	v.details.unattested == []
}

test_no_provenance_no_finding if {
	count(provenance.violation) == 0 with input as {"review": {}}
}

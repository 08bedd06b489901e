package gitgate.provenance_test

import rego.v1

import data.gitgate.provenance

verdict(status) := {"status": status, "reason": "r", "differing": [], "unattested": [], "securityRelevant": []}

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

test_security_relevant_unattested_is_refused if {
	p := object.union(verdict("traceable"), {"securityRelevant": ["spec.volumes[name=root].hostPath"]})
	some v in provenance.violation with input as {"provenance": p}
	contains(v.msg, "hostPath")
}

test_no_provenance_no_finding if {
	count(provenance.violation) == 0 with input as {"review": {}}
}

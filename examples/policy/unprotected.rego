# No change may leave a failover pair without failover protection longer than the
# organisation allows: the JSON plan view's summary.unprotected_s (seconds the pair runs
# without a failover relationship) against data.swing.max_unprotected_s (default 8 days).
#
#   swing plan --offline --format json plan.yaml | conftest test --policy examples/policy -
package main

import rego.v1

# The limit is read from data.swing, never from the whole data document: a rule of package
# main that refers to all of data refers to itself, and OPA rejects it as recursive.
default max_unprotected_s := 691200

max_unprotected_s := data.swing.max_unprotected_s

deny contains msg if {
	input.summary.unprotected_s > max_unprotected_s
	msg := sprintf(
		"plan %s leaves the pair unprotected for %d s; at most %d s are allowed",
		[input.plan.name, input.summary.unprotected_s, max_unprotected_s],
	)
}

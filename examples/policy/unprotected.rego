# No change may leave a failover pair without failover protection longer than the
# organisation allows: the JSON plan view's summary.unprotected_s (seconds the pair runs
# without a failover relationship) against data.swing.max_unprotected_s (default 8 days).
#
#   swing plan --offline --format json plan.yaml | conftest test --policy examples/policy -
package main

import rego.v1

default_max_unprotected_s := 691200

max_unprotected_s := object.get(data, ["swing", "max_unprotected_s"], default_max_unprotected_s)

deny contains msg if {
	input.summary.unprotected_s > max_unprotected_s
	msg := sprintf(
		"plan %s leaves the pair unprotected for %d s; at most %d s are allowed",
		[input.plan.name, input.summary.unprotected_s, max_unprotected_s],
	)
}

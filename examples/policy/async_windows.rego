# An asynchronous failover upgrade runs in two maintenance windows: the backup is upgraded
# and takes over in the first, the old primary follows in the second, so a problem found in
# between can still be rolled back. A plan of scenario failover-asynchronous must declare at
# least two windows.
package main

import rego.v1

deny contains msg if {
	input.plan.scenario == "failover-asynchronous"
	count(input.windows) < 2
	msg := sprintf(
		"plan %s is an asynchronous failover upgrade with %d maintenance window(s); it needs two",
		[input.plan.name, count(input.windows)],
	)
}

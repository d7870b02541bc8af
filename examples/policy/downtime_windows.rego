# Steps that take the site down run only inside a maintenance window: when the plan declares
# windows, every step of the JSON plan view with downtime: true must be bound to one of them
# (window set). A plan without windows is left to the other policies.
package main

import rego.v1

deny contains msg if {
	count(input.windows) > 0
	some step in input.steps
	step.downtime
	not step.window
	msg := sprintf(
		"plan %s: step %s takes the site down outside every maintenance window",
		[input.plan.name, step.id],
	)
}

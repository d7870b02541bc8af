# Steps that take the site down run only inside a maintenance window: when the plan declares
# windows, every step of the JSON plan view with downtime: true must be bound to one of them
# (window set) and scheduled within it (from start_s for estimate_s seconds, inside the
# window's start_s and duration_s). A plan without windows is left to the other policies.
package main

import rego.v1

deny contains msg if {
	count(input.windows) > 0
	some step in input.steps
	step.downtime
	not is_string(step.window) # absent, or null as the schema allows
	msg := sprintf(
		"plan %s: step %s takes the site down outside every maintenance window",
		[input.plan.name, step.id],
	)
}

deny contains msg if {
	some step in input.steps
	step.downtime
	is_string(step.window)
	not within_its_window(step)
	msg := sprintf(
		"plan %s: step %s takes the site down from %d s to %d s, outside its maintenance window %s",
		[input.plan.name, step.id, step.start_s, step.start_s + step.estimate_s, step.window],
	)
}

within_its_window(step) if {
	some window in input.windows
	window.name == step.window
	step.start_s >= window.start_s
	step.start_s + step.estimate_s <= window.start_s + window.duration_s
}

violation contains {"msg": msg} if {
	some c in containers
	some resource in input.parameters.requests
	not c.resources.requests[resource]
	msg := sprintf("%s %s: container %s has no resources.requests.%s", [kind, name, c.name, resource])
}

violation contains {"msg": msg} if {
	some c in containers
	some resource in input.parameters.limits
	not c.resources.limits[resource]
	msg := sprintf("%s %s: container %s has no resources.limits.%s", [kind, name, c.name, resource])
}

# Only long-running containers serve traffic; init containers run to completion.
violation contains {"msg": msg} if {
	some c in pod_spec.containers
	some probe in input.parameters.probes
	not c[probe]
	msg := sprintf("%s %s: container %s has no %s", [kind, name, c.name, probe])
}

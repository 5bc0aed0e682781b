violation contains {"msg": msg} if {
	not exempt
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	pod_spec[field] == true
	msg := sprintf("%s %s: spec.%s shares a host namespace (Pod Security restricted)", [kind, name, field])
}

violation contains {"msg": msg} if {
	not exempt
	some c in containers
	c.securityContext.privileged == true
	msg := sprintf("%s %s: container %s is privileged (Pod Security restricted)", [kind, name, c.name])
}

violation contains {"msg": msg} if {
	not exempt
	some c in containers
	some port in c.ports
	object.get(port, "hostPort", 0) != 0
	msg := sprintf("%s %s: container %s binds hostPort %d (Pod Security restricted)", [kind, name, c.name, port.hostPort])
}

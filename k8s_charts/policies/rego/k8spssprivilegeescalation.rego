violation contains {"msg": msg} if {
	some c in containers
	not c.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("%s %s: container %s must set securityContext.allowPrivilegeEscalation: false", [kind, name, c.name])
}

allowed_add := {cap | some cap in input.parameters.allowedAdd}

drops_all(c) if "ALL" in c.securityContext.capabilities.drop

violation contains {"msg": msg} if {
	some c in containers
	not drops_all(c)
	msg := sprintf("%s %s: container %s must drop ALL capabilities", [kind, name, c.name])
}

violation contains {"msg": msg} if {
	some c in containers
	some cap in c.securityContext.capabilities.add
	not cap in allowed_add
	allowed := concat(", ", sort(allowed_add))
	msg := concat("", [kind, " ", name, ": container ", c.name, " adds capability ", cap, "; allowed: ", allowed])
}

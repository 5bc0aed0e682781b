allowed_profiles := {"RuntimeDefault", "Localhost"}

effective_profile(c) := p if {
	p := c.securityContext.seccompProfile.type
} else := p if {
	p := pod_spec.securityContext.seccompProfile.type
}

violation contains {"msg": msg} if {
	some c in containers
	not effective_profile(c) in allowed_profiles
	msg := sprintf("%s %s: container %s needs seccompProfile RuntimeDefault or Localhost", [kind, name, c.name])
}

violation contains {"msg": msg} if {
	profile := pod_spec.securityContext.seccompProfile.type
	not profile in allowed_profiles
	msg := sprintf("%s %s: Pod seccompProfile %s is not allowed", [kind, name, profile])
}

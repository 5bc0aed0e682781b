# A container's own setting wins over the Pod's, as the kubelet applies them.
non_root(c) if c.securityContext.runAsNonRoot == true

non_root(c) if {
	not c.securityContext.runAsNonRoot == false
	pod_spec.securityContext.runAsNonRoot == true
}

violation contains {"msg": msg} if {
	not exempt
	some c in containers
	not non_root(c)
	msg := sprintf("%s %s: container %s must run with runAsNonRoot: true (Pod or container securityContext)", [kind, name, c.name])
}

violation contains {"msg": msg} if {
	not exempt
	pod_spec.securityContext.runAsUser == 0
	msg := sprintf("%s %s: securityContext.runAsUser is 0 (root)", [kind, name])
}

violation contains {"msg": msg} if {
	not exempt
	some c in containers
	c.securityContext.runAsUser == 0
	msg := sprintf("%s %s: container %s sets runAsUser 0 (root)", [kind, name, c.name])
}

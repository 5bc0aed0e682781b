allowed_types := {t | some t in input.parameters.allowedTypes}

violation contains {"msg": msg} if {
	not exempt
	some volume in pod_spec.volumes
	some source, _ in volume
	source != "name"
	not source in allowed_types
	allowed := concat(", ", sort(allowed_types))
	msg := concat("", [kind, " ", name, ": volume ", volume.name, " has type ", source, "; allowed: ", allowed])
}

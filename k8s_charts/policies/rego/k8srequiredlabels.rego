has_label(labels, key) if labels[key] != ""

violation contains {"msg": msg} if {
	some key in input.parameters.labels
	not has_label(object.get(obj.metadata, "labels", {}), key)
	msg := sprintf("%s %s: metadata.labels lacks %s", [kind, name, key])
}

violation contains {"msg": msg} if {
	some key in input.parameters.labels
	template_labels := object.get(object.get(pod_template, "metadata", {}), "labels", {})
	not has_label(template_labels, key)
	msg := sprintf("%s %s: Pod template labels lack %s", [kind, name, key])
}

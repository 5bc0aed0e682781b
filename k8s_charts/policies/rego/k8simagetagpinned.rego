tag_of(image) := tag if {
	parts := split(image, "/")
	pieces := split(parts[count(parts) - 1], ":")
	count(pieces) == 2
	tag := pieces[1]
	tag != ""
}

pinned(image) if contains(image, "@sha256:")

pinned(image) if {
	not contains(image, "@")
	tag := tag_of(image)
	tag != "latest"
}

violation contains {"msg": msg} if {
	some c in containers
	not pinned(c.image)
	msg := sprintf("%s %s: container %s image %s must carry a version tag or digest (not latest)", [kind, name, c.name, c.image])
}

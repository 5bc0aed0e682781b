# Images are compared in canonical form: "redis" is docker.io/library/redis and
# "kong/kong" is docker.io/kong/kong, so a short name cannot slip past the list.
repository_of(image) := repo if {
	parts := split(split(image, "@")[0], "/")
	last := split(parts[count(parts) - 1], ":")[0]
	repo := concat("/", array.concat(array.slice(parts, 0, count(parts) - 1), [last]))
}

is_registry(host) if contains(host, ".")

is_registry(host) if contains(host, ":")

is_registry("localhost")

canonical(image) := concat("", ["docker.io/library/", repo]) if {
	repo := repository_of(image)
	not contains(repo, "/")
}

canonical(image) := concat("", ["docker.io/", repo]) if {
	repo := repository_of(image)
	first := split(repo, "/")[0]
	contains(repo, "/")
	not is_registry(first)
}

canonical(image) := repo if {
	repo := repository_of(image)
	is_registry(split(repo, "/")[0])
	contains(repo, "/")
}

# An entry ending in "/" admits a whole organization; any other entry is one repository.
allowed(repo) if {
	some entry in input.parameters.repositories
	endswith(entry, "/")
	startswith(repo, entry)
}

allowed(repo) if {
	some entry in input.parameters.repositories
	repo == entry
}

violation contains {"msg": msg} if {
	some c in containers
	repo := canonical(c.image)
	not allowed(repo)
	# concat, not sprintf: regopy 1.5 quotes a concat() result formatted with %s.
	msg := concat("", [kind, " ", name, ": container ", c.name, " image ", c.image, " (", repo, ") is not from an allowed repository"])
}

"""One module per repository operation; each takes a ``casstore.project.Project`` (the
working tree, its config and cache) and returns a typed result. ``casstore.Repo`` calls
them; they call each other's functions, never the facade."""

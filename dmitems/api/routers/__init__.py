"""One route table per resource: items (REST), items (the seed's compat paths), health."""

"""ComponentResources, one concept per file."""

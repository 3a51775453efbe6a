"""Argo objects installed once per cluster. The hera definitions live in
`jetstream.runners.templates` (so an installed `jetstream workflows render` can produce
them too); the modules here name them, and `python -m workflows.render` writes the
committed YAML next to them."""

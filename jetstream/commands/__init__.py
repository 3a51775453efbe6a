"""CLI command modules, imported lazily by jetstream.cli."""

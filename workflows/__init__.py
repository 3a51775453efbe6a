"""Argo objects installed once per cluster. The hera definitions of all six live in
`jetstream.runners.argo.templates` (so an installed `jetstream workflows render` can
produce them too); the modules here name them, and `python -m workflows.render`
(`make render`) writes the committed YAML into the chart, charts/jetstream/files/workflows/,
its only home (the chart reads it from there; scripts/render_chart.py renders k8s/)."""

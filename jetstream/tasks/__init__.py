"""Task bodies: what one node of the graph does. Each is called by `jetstream task <kind>`
(in a local subprocess or an Argo pod) with a warehouse and a resolved spec."""

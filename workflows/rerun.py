"""WorkflowTemplate `jetstream-rerun`: `argo submit --from workflowtemplate/jetstream-rerun
-p experiment=SLUG`."""

from jetstream.runners.argo.templates import rerun_workflow_template

w = rerun_workflow_template()

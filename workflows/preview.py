"""WorkflowTemplate `jetstream-preview`: `argo submit --from
workflowtemplate/jetstream-preview -p experiment=SLUG`."""

from jetstream.runners.argo.templates import preview_workflow_template

w = preview_workflow_template()

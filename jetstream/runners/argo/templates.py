"""The six Argo objects installed once per cluster, as hera definitions (rendered to the
committed YAML under charts/jetstream/files/workflows/ by `make render`, i.e.
`python -m workflows.render`, or printed by `jetstream workflows render`):

- CronWorkflow `jetstream-daily`: every day at 03:00 UTC, `jetstream controller` analyses
  the previous UTC day (plans the graph and submits it as one Workflow);
- WorkflowTemplate `jetstream-rerun`: `argo submit --from workflowtemplate/jetstream-rerun
  -p experiment=SLUG [-p metric=M -p period=P -p start-date=D -p end-date=D]`;
- WorkflowTemplate `jetstream-preview`: `argo submit --from workflowtemplate/jetstream-preview
  -p experiment=SLUG [-p start-date=D -p end-date=D]`;
- CronWorkflows `jetstream-monitor-five-minute` (`*/5 * * * *`: recents, derived tables,
  JSON, health), `jetstream-monitor-hourly` (`30 * * * *`: the last complete hour, 30
  minutes late) and `jetstream-monitor-daily` (`0 3 * * *`: the previous UTC day, final),
  each running `jetstream monitor run --job JOB --at {{workflow.scheduledTime}}` so a
  retried run does exactly the same work.

Install-specific settings (warehouse, bucket, Experimenter URL, config repository, image,
argo-server) come from the ConfigMap `jetstream-settings` (env vars JETSTREAM_*, read by
the CLI options), so the same YAML serves every install. The image is a workflow
parameter read from the ConfigMap key JETSTREAM_IMAGE: Argo reads parameter ConfigMaps
only when they carry the label `workflows.argoproj.io/configmap-type: Parameter`
(`CONFIGMAP_PARAMETER_LABEL`), which the chart's ConfigMap sets.

Supported Argo versions: 3.5 and 3.6 (`SUPPORTED_ARGO_VERSIONS`). The objects are rendered
by `manifests()` from the hera definitions, with one CronWorkflow change hera cannot
express: a single schedule is written as `spec.schedule` (the only field 3.5 reads; 3.6
reads it too and refuses `schedule` next to `schedules`; 4.x reads only `schedules`).

Every pod runs hardened (`pod_security`): non-root, read-only root filesystem, emptyDirs
for /tmp and the config-repo cache. The daily controller clones the config repository
(JETSTREAM_CONFIG_REPO, a git URL[@REF]) into that cache itself and pins the tasks it
submits to the commit it planned from.

Optional template parameters reach the CLI as env vars (JETSTREAM_METRIC, JETSTREAM_PERIOD,
JETSTREAM_START_DATE, JETSTREAM_END_DATE): an empty value counts as unset for click.
"""

from __future__ import annotations

from typing import Any

SUPPORTED_ARGO_VERSIONS = ("3.5", "3.6")
SETTINGS_CONFIGMAP = "jetstream-settings"
CONFIGMAP_PARAMETER_LABEL = ("workflows.argoproj.io/configmap-type", "Parameter")
IMAGE_KEY = "JETSTREAM_IMAGE"
SERVICE_ACCOUNT = "jetstream"
APP_LABELS = {"app.kubernetes.io/name": "jetstream", "app.kubernetes.io/component": "workflows"}
DAY = 24 * 3600


def image_parameter() -> Any:
    from hera.workflows import Parameter
    from hera.workflows.models import ConfigMapKeySelector, ValueFrom

    return Parameter(
        name="image",
        description="Container image, pinned by digest; from the jetstream-settings ConfigMap",
        value_from=ValueFrom(
            config_map_key_ref=ConfigMapKeySelector(name=SETTINGS_CONFIGMAP, key=IMAGE_KEY)
        ),
    )


RETRIES = 2
BACKOFF_SECONDS = 60


def retry_max_duration(deadline: int) -> int:
    """Argo counts `backoff.maxDuration` from the first attempt's start (and cuts retried
    pods' deadlines to it): cover every attempt at its full deadline plus the waits."""
    waits = sum(BACKOFF_SECONDS * 2**k for k in range(RETRIES))
    return (RETRIES + 1) * deadline + waits


def container(
    name: str, args: list[str], deadline: int, extra_env: dict[str, str] | None = None
) -> Any:
    from hera.workflows import ConfigMapEnvFrom, Container, Env, RetryStrategy
    from hera.workflows.models import Backoff

    from jetstream.runners.argo import pod_security
    from jetstream.runners.argo.build import RETRY_EXPRESSION

    env = [Env(name="JETSTREAM_LOG_FORMAT", value="json"), *pod_security.env()]
    env += [Env(name=k, value=v) for k, v in (extra_env or {}).items()]
    return Container(
        name=name,
        image="{{workflow.parameters.image}}",
        command=["jetstream"],
        args=args,
        env=env,
        env_from=[ConfigMapEnvFrom(name=SETTINGS_CONFIGMAP)],
        active_deadline_seconds=deadline,
        pod_spec_patch=(
            '{"containers": [{"name": "main", "resources": {"limits": {"memory": "1Gi"}, '
            '"requests": {"cpu": "250m", "memory": "1Gi"}}}]}'
        ),
        retry_strategy=RetryStrategy(
            limit=RETRIES,
            retry_policy="Always",
            expression=RETRY_EXPRESSION,
            backoff=Backoff(
                duration=f"{BACKOFF_SECONDS}s",
                factor=2,  # type: ignore[arg-type]
                max_duration=f"{retry_max_duration(deadline)}s",
            ),
        ),
        labels={"app.kubernetes.io/name": "jetstream", "jetstream/kind": name},
        **pod_security.fields(),
    )


def common_spec() -> dict[str, Any]:
    from hera.workflows.models import PodGC, TTLStrategy

    return {
        "service_account_name": SERVICE_ACCOUNT,
        "pod_gc": PodGC(strategy="OnPodSuccess"),
        "ttl_strategy": TTLStrategy(seconds_after_completion=7 * DAY),
    }


def daily_cron_workflow() -> Any:
    from hera.workflows import CronWorkflow

    controller = container(
        "controller",
        ["controller", "--scheduled-time", "{{workflow.scheduledTime}}"],
        deadline=3600,
    )
    return CronWorkflow(
        name="jetstream-daily",
        labels=APP_LABELS,
        annotations={
            "workflows.argoproj.io/description": (
                "Daily analysis of the previous UTC day: plan every live experiment and "
                "submit the graph as one workflow."
            )
        },
        schedules=["0 3 * * *"],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=6 * 3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=7,
        entrypoint="controller",
        arguments=[image_parameter()],
        templates=[controller],
        **common_spec(),
    )


def rerun_workflow_template() -> Any:
    from hera.workflows import Parameter, WorkflowTemplate

    rerun = container(
        "rerun",
        ["rerun", "--experiment", "{{workflow.parameters.experiment}}", "--runner", "argo"],
        deadline=3600,
        extra_env={
            "JETSTREAM_METRIC": "{{workflow.parameters.metric}}",
            "JETSTREAM_PERIOD": "{{workflow.parameters.period}}",
            "JETSTREAM_START_DATE": "{{workflow.parameters.start-date}}",
            "JETSTREAM_END_DATE": "{{workflow.parameters.end-date}}",
            "JETSTREAM_TRIGGER": "{{workflow.name}}",
        },
    )
    return WorkflowTemplate(
        name="jetstream-rerun",
        labels=APP_LABELS,
        annotations={
            "workflows.argoproj.io/description": (
                "Recompute one experiment: argo submit --from workflowtemplate/jetstream-rerun "
                "-p experiment=SLUG [-p metric=M] [-p period=P] [-p start-date=YYYY-MM-DD] "
                "[-p end-date=YYYY-MM-DD]"
            )
        },
        entrypoint="rerun",
        arguments=[
            Parameter(name="experiment", description="Experiment slug (required)"),
            Parameter(name="metric", value="", description="Only this metric (default: all)"),
            Parameter(name="period", value="", description="Only this period (default: all)"),
            Parameter(name="start-date", value="", description="First date (default: start)"),
            Parameter(name="end-date", value="", description="Last date (default: yesterday)"),
            image_parameter(),
        ],
        templates=[rerun],
        **common_spec(),
    )


def preview_workflow_template() -> Any:
    from hera.workflows import Parameter, WorkflowTemplate

    preview = container(
        "preview",
        ["preview", "--experiment", "{{workflow.parameters.experiment}}"],
        deadline=2 * 3600,
        extra_env={
            "JETSTREAM_START_DATE": "{{workflow.parameters.start-date}}",
            "JETSTREAM_END_DATE": "{{workflow.parameters.end-date}}",
        },
    )
    return WorkflowTemplate(
        name="jetstream-preview",
        labels=APP_LABELS,
        annotations={
            "workflows.argoproj.io/description": (
                "Preview a config on a sample before merging it: argo submit --from "
                "workflowtemplate/jetstream-preview -p experiment=SLUG"
            )
        },
        entrypoint="preview",
        arguments=[
            Parameter(name="experiment", description="Experiment slug (required)"),
            Parameter(name="start-date", value="", description="First date (default: start)"),
            Parameter(name="end-date", value="", description="Last date (default: start + 7 days)"),
            image_parameter(),
        ],
        templates=[preview],
        **common_spec(),
    )


# job value -> (template deadline s, starting deadline s, description)
MONITOR_JOBS: dict[str, tuple[int, int, str]] = {
    "five-minute": (
        240, 120,
        "Live monitoring every 5 minutes: recents tables, derived tables, "
        "monitoring/<slug>_<dataset>.json and health checks.",
    ),
    "hourly": (
        1800, 1200,
        "Live monitoring: materialize the last complete hour (30 minutes after it ends) into "
        "the hourly tables.",
    ),
    "daily": (
        3600, 6 * 3600,
        "Live monitoring: finalize the previous UTC day into the daily tables.",
    ),
}  # fmt: skip


def monitor_cron_workflow(job: Any) -> Any:
    """The CronWorkflow of one live-monitoring `Job`."""
    from hera.workflows import CronWorkflow

    from jetstream.monitoring.schedule import CRON

    deadline, starting, description = MONITOR_JOBS[job.value]
    monitor = container(
        "monitor",
        ["monitor", "run", "--job", job.value, "--at", "{{workflow.scheduledTime}}"],
        deadline=deadline,
    )
    return CronWorkflow(
        name=f"jetstream-monitor-{job.value}",
        labels=APP_LABELS,
        annotations={"workflows.argoproj.io/description": description},
        schedules=[CRON[job]],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=starting,
        successful_jobs_history_limit=1,
        failed_jobs_history_limit=3,
        entrypoint="monitor",
        arguments=[image_parameter()],
        templates=[monitor],
        **common_spec(),
    )


def monitoring_cron_workflows() -> list[Any]:
    """The three live-monitoring CronWorkflows: five-minute, hourly, daily."""
    from jetstream.monitoring.schedule import Job

    return [monitor_cron_workflow(job) for job in (Job.FIVE_MINUTE, Job.HOURLY, Job.DAILY)]


def cluster_objects() -> list[Any]:
    """The analysis objects (rerun, preview, daily), in install order."""
    return [rerun_workflow_template(), preview_workflow_template(), daily_cron_workflow()]


def all_objects() -> list[Any]:
    """All six objects installed once per cluster, in install order: the analysis ones,
    then the monitoring CronWorkflows."""
    return [*cluster_objects(), *monitoring_cron_workflows()]


def manifest(obj: Any) -> dict[str, Any]:
    """The object as installed: hera's dict, with a single CronWorkflow schedule written
    as `spec.schedule` (see the module docstring)."""
    out: dict[str, Any] = obj.to_dict()
    spec = out.get("spec", {})
    if out.get("kind") == "CronWorkflow" and len(spec.get("schedules") or []) == 1:
        rest = {k: v for k, v in spec.items() if k != "schedules"}
        out["spec"] = {"schedule": spec["schedules"][0], **rest}
    return out


def manifests() -> list[dict[str, Any]]:
    """All six objects as installed, in install order."""
    return [manifest(o) for o in all_objects()]


def file_name(obj: Any) -> str:
    name = obj["metadata"]["name"] if isinstance(obj, dict) else obj.name
    return f"{name}.yaml"


HEADER = "# Rendered from jetstream/runners/argo/templates.py by `make render`; do not edit.\n"


def _ordered(value: Any) -> Any:
    """hera's YAML order: `name` first, then scalars, lists, mappings (each by key)."""
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    if not isinstance(value, dict):
        return value

    def rank(kv: tuple[str, Any]) -> tuple[int, str]:
        k, v = kv
        if k == "name" and isinstance(v, str):
            return 0, k
        return (3 if isinstance(v, dict) else 2 if isinstance(v, list) else 1), k

    return {k: _ordered(v) for k, v in sorted(value.items(), key=rank)}


def to_yaml(manifest: dict[str, Any]) -> str:
    from hera import _yaml  # hera's yaml: multi-line strings as blocks, y/n quoted

    assert _yaml is not None
    return str(_yaml.dump(_ordered(manifest)))


def render_all() -> dict[str, str]:
    """file name -> YAML text, for all six cluster objects."""
    return {file_name(m): HEADER + to_yaml(m) for m in manifests()}

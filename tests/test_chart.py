"""The Helm chart, rendered by the real Helm engine offline (helm-python-sdk), with default
and non-default values: every Kubernetes object validated with kubernetes-validate
(strict, 1.33) plus checks the schemas cannot make; every Argo object with
jetstream.manifests (schema + semantics); `helm lint --strict`; the values schema; and the
committed k8s/ rendering must not drift."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO

CHART = REPO / "charts" / "jetstream"
NAMESPACE = "jetstream"

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (dev dependency) is missing")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")
GCP = "iam.gke.io/gcp-service-account"

CUSTOM = {
    "image": {
        "repository": "europe-docker.pkg.dev/p/r/jetstream",
        "digest": "sha256:" + "ab" * 32,
        "pullPolicy": "Always",
    },
    "settings": {
        "warehouse": "bigquery:my-project-1.results",
        "out": "gs://bucket/prefix",
        "argoServer": "https://argo-server.argo:2746",
        "configRepo": "/config",
        "extra": {"JETSTREAM_LOG_LEVEL": "DEBUG"},
    },
    "serviceAccounts": {
        "controller": {
            "name": "js-controller",
            "gcpServiceAccount": "js-controller@my-project-1.iam.gserviceaccount.com",
        },
        "analysis": {
            "name": "js-analysis",
            "automountServiceAccountToken": False,
            "gcpServiceAccount": "js-analysis@my-project-1.iam.gserviceaccount.com",
        },
        "webhook": {
            "name": "js-webhook",
            "gcpServiceAccount": "js-webhook@my-project-1.iam.gserviceaccount.com",
        },
    },
    "argo": {"suspend": ["jetstream-daily"]},
    "webhook": {
        "secretName": "github-hook",
        "secretKey": "token.txt",
        "port": 9000,
        "storeClaim": "webhook-store",
        "service": {"type": "ClusterIP", "port": 8080},
        "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "networkPolicy": {
            "enabled": True,
            "egressPorts": [443],
            "ingressFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                    }
                }
            ],
        },
    },
}
VARIANTS = {
    "default": ({}, "jetstream", NAMESPACE),
    "custom": (CUSTOM, "js", "analysis-prod"),
    "no-webhook": ({"webhook": {"enabled": False}, "argo": {"enabled": False}}, "j", "x"),
    "no-netpol": ({"webhook": {"networkPolicy": {"enabled": False}}}, "jetstream", "y"),
}


def render(values: dict[str, Any], name: str, namespace: str) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name=name, namespace=namespace)
    objs = []
    for _, text in sorted(out.items()):
        objs += [d for d in yaml.safe_load_all(text) if d]
    return objs


@pytest.fixture(scope="module", params=list(VARIANTS))
def rendered(request) -> tuple[str, dict[str, Any], str, list[dict[str, Any]]]:
    values, name, namespace = VARIANTS[request.param]
    return request.param, values, namespace, render(values, name, namespace)


def kind(objs, k: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == k]


def one(objs, k: str) -> dict[str, Any]:
    (obj,) = kind(objs, k)
    return obj


# -- every object ------------------------------------------------------------------------


def test_kubernetes_objects_validate_strictly(rendered):
    _, _, _, objs = rendered
    kube = [o for o in objs if not o["apiVersion"].startswith("argoproj.io/")]
    assert kube
    for obj in kube:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)


@pytest.mark.shared
def test_argo_objects_validate_with_jetstream_manifests(rendered, shared_dir):
    from jetstream import manifests

    name, _, _, objs = rendered
    argo = [o for o in objs if o["apiVersion"].startswith("argoproj.io/")]
    if name == "no-webhook":
        assert argo == []
        return
    assert {o["metadata"]["name"] for o in argo} >= {
        "jetstream-daily",
        "jetstream-rerun",
        "jetstream-preview",
    }
    schema = manifests.load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    problems = manifests.validate_all(argo, schema)
    assert problems == []


CLUSTER_SCOPED = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def test_names_namespaces_and_labels(rendered):
    _, _, namespace, objs = rendered
    for obj in objs:
        meta = obj["metadata"]
        assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
        if obj["kind"] in CLUSTER_SCOPED:
            # one per release namespace: the name carries it
            assert "namespace" not in meta and meta["name"].endswith(namespace), meta["name"]
        else:
            assert meta["namespace"] == namespace, meta["name"]
        assert meta["labels"]["app.kubernetes.io/name"] == "jetstream"
    ids = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids)), "duplicate objects"
    assert not kind(objs, "Secret"), "the chart must never carry the webhook key"
    assert not kind(objs, "ClusterRole") and not kind(objs, "ClusterRoleBinding")


# -- service accounts and RBAC -----------------------------------------------------------


def test_service_accounts_and_workload_identity(rendered):
    variant, values, _, objs = rendered
    accounts = {o["metadata"]["name"]: o for o in kind(objs, "ServiceAccount")}
    sa_values = values.get("serviceAccounts", {})
    expected = {
        "controller": "jetstream-controller",
        "analysis": "jetstream",
        "webhook": "jetstream-webhook",
    }
    for role, default in expected.items():
        name = sa_values.get(role, {}).get("name", default)
        if role == "webhook" and variant == "no-webhook":
            assert name not in accounts
            continue
        sa = accounts[name]
        gcp = sa_values.get(role, {}).get("gcpServiceAccount")
        assert (sa["metadata"].get("annotations") or {}).get(GCP) == gcp
    analysis = accounts[sa_values.get("analysis", {}).get("name", "jetstream")]
    assert analysis["automountServiceAccountToken"] is (variant != "custom")


def test_rbac_is_least_privilege_and_bound_to_rendered_accounts(rendered):
    variant, _, namespace, objs = rendered
    roles = {o["metadata"]["name"]: o for o in kind(objs, "Role")}
    accounts = {o["metadata"]["name"] for o in kind(objs, "ServiceAccount")}
    allowed = {
        ("argoproj.io", "workflows"): {"create", "get", "list", "watch"},
        ("argoproj.io", "workflowtemplates"): {"get"},
        ("argoproj.io", "workflowtaskresults"): {"create", "patch"},
    }
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    for role in roles.values():
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert set(rule["verbs"]) <= allowed[(group, resource)], (group, resource)
    bound: dict[str, set[str]] = {}
    for binding in kind(objs, "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] in roles
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
            assert subject["namespace"] == namespace
            bound.setdefault(subject["name"], set()).add(binding["roleRef"]["name"])
    names = {o["metadata"]["name"] for o in kind(objs, "ServiceAccount")}
    analysis = next(n for n in names if n in ("jetstream", "js-analysis"))
    assert bound[analysis] == {"jetstream-executor"}, "analysis pods: executor rights only"
    controller = next(n for n in names if n.endswith("controller"))
    assert "jetstream-submitter" in bound[controller]
    assert bound[controller] == {"jetstream-submitter", "jetstream-executor"}
    if variant != "no-webhook":
        # the internet-facing webhook: create Workflows, nothing else
        webhook = next(n for n in names if n.endswith("webhook"))
        assert bound[webhook] == {"jetstream-webhook-submitter"}
        (rule,) = roles["jetstream-webhook-submitter"]["rules"]
        assert rule == {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflows"],
            "verbs": ["create"],
        }


# -- settings ----------------------------------------------------------------------------


def test_settings_configmap(rendered):
    _, values, namespace, objs = rendered
    cm = one(objs, "ConfigMap")
    assert cm["metadata"]["name"] == "jetstream-settings"
    data = cm["data"]
    for key in (
        "JETSTREAM_WAREHOUSE",
        "JETSTREAM_OUT",
        "JETSTREAM_EXPERIMENTS",
        "JETSTREAM_CONFIG_REPO_URL",
        "JETSTREAM_IMAGE",
    ):
        assert data[key], key
    assert re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", data["JETSTREAM_IMAGE"])
    assert all(isinstance(v, str) for v in data.values())
    # Argo reads the image parameter (configMapKeyRef) only from labelled ConfigMaps
    assert cm["metadata"]["labels"]["workflows.argoproj.io/configmap-type"] == "Parameter"
    # analyses always get a config repository: by default the webhook's repo and branch
    expected_repo = values.get("settings", {}).get("configRepo") or (
        f"{data['JETSTREAM_CONFIG_REPO_URL']}@{data['JETSTREAM_CONFIG_BRANCH']}"
    )
    assert data["JETSTREAM_CONFIG_REPO"] == expected_repo
    if values is CUSTOM:
        assert data["JETSTREAM_ARGO_SERVER"] == "https://argo-server.argo:2746"
        assert data["JETSTREAM_LOG_LEVEL"] == "DEBUG"
        assert data["JETSTREAM_IMAGE"].startswith("europe-docker.pkg.dev/p/r/jetstream@")


# -- the webhook -------------------------------------------------------------------------


def test_webhook_deployment_service_and_policy(rendered):
    variant, values, _, objs = rendered
    if variant == "no-webhook":
        assert not kind(objs, "Deployment") and not kind(objs, "Service")
        return
    dep = one(objs, "Deployment")
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items(), "Deployment selector does not match its pods"
    spec = pod["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in ports or get["port"] in ports.values()
    assert container["args"][:2] == ["webhook", "serve"]
    assert str(ports["http"]) == container["args"][container["args"].index("--port") + 1]
    assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"])
    assert container["imagePullPolicy"] in ("Always", "IfNotPresent", "Never")
    # security
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    # resources parse as quantities
    for section in ("requests", "limits"):
        for q in container["resources"].get(section, {}).values():
            assert QUANTITY.match(str(q)), q
    # writable paths are volumes; the key is a Secret reference, never inlined
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(mounts.values()) <= set(volumes)
    assert "emptyDir" in volumes[mounts["/tmp"]]
    for v in volumes.values():
        if "emptyDir" in v and "sizeLimit" in v["emptyDir"]:
            assert QUANTITY.match(str(v["emptyDir"]["sizeLimit"]))
    store = volumes[mounts["/var/lib/jetstream-webhook"]]
    if values is CUSTOM:
        assert store["persistentVolumeClaim"]["claimName"] == "webhook-store"
    else:
        assert "emptyDir" in store
    secret = next(v["secret"] for v in volumes.values() if "secret" in v)
    expected = values.get("webhook", {})
    assert secret["secretName"] == expected.get("secretName", "jetstream-webhook")
    assert secret["items"][0]["key"] == expected.get("secretKey", "key")
    env = {e["name"]: e for e in container["env"]}
    assert "JETSTREAM_WEBHOOK_SECRET" not in env
    assert env["JETSTREAM_WEBHOOK_SECRET_FILE"]["value"].startswith(
        next(p for p, n in mounts.items() if "secret" in volumes[n])
    )
    assert spec["serviceAccountName"] in {
        o["metadata"]["name"] for o in kind(objs, "ServiceAccount")
    }
    assert container["envFrom"][0]["configMapRef"]["name"] == "jetstream-settings"

    svc = one(objs, "Service")
    assert svc["spec"]["selector"].items() <= labels.items(), "Service selects no webhook pod"
    for port in svc["spec"]["ports"]:
        assert port["targetPort"] in ports or port["targetPort"] in ports.values()

    policies = kind(objs, "NetworkPolicy")
    if variant == "no-netpol":
        assert policies == []
        return
    (policy,) = policies
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {ports["http"]}
    (rule,) = policy["spec"]["ingress"]
    # never every namespace: an empty selector (or a missing `from`) admits any pod
    assert rule["from"]
    for peer in rule["from"]:
        assert peer.get("namespaceSelector") != {} and peer != {}, peer
    expected = values.get("webhook", {}).get("networkPolicy", {}).get("ingressFrom")
    if expected:
        assert rule["from"] == expected
    else:
        assert rule["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ]


def test_argo_objects_run_as_the_right_accounts(rendered):
    variant, values, namespace, objs = rendered
    argo = {o["metadata"]["name"]: o for o in objs if o["apiVersion"].startswith("argoproj.io/")}
    if variant == "no-webhook":
        return
    sa = values.get("serviceAccounts", {})
    controller = sa.get("controller", {}).get("name", "jetstream-controller")
    analysis = sa.get("analysis", {}).get("name", "jetstream")
    daily = argo["jetstream-daily"]["spec"]
    assert daily["workflowSpec"]["serviceAccountName"] == controller
    assert daily["suspend"] is (variant == "custom")
    assert argo["jetstream-rerun"]["spec"]["serviceAccountName"] == controller
    assert argo["jetstream-preview"]["spec"]["serviceAccountName"] == analysis
    for obj in argo.values():
        assert obj["metadata"]["namespace"] == namespace


# -- workflow pods and the webhook's admission policy ------------------------------------


def assert_hardened_pod(template: dict[str, Any]) -> None:
    """A container template's pod: non-root, read-only root filesystem, no escalation, no
    capabilities, RuntimeDefault seccomp; writable paths are emptyDirs."""
    where = template["name"]
    pod = template["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] not in (0, None), where
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
    sc = template["container"]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True, where
    assert sc["allowPrivilegeEscalation"] is False and sc.get("privileged") is False, where
    assert sc["capabilities"] == {"drop": ["ALL"]}, where
    volumes = {v["name"]: v for v in template["volumes"]}
    assert all(set(v) == {"name", "emptyDir"} for v in volumes.values()), where
    mounts = {m["mountPath"]: m["name"] for m in template["container"]["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in template["container"].get("env", [])}
    for path in ("/tmp", env["JETSTREAM_CACHE_DIR"], env["HOME"]):
        assert path in mounts, (where, path)
    for v in volumes.values():
        assert QUANTITY.match(str(v["emptyDir"]["sizeLimit"])), where


def test_workflow_pods_are_hardened(rendered):
    variant, _, _, objs = rendered
    argo = [o for o in objs if o["apiVersion"].startswith("argoproj.io/")]
    assert argo or variant == "no-webhook"
    for obj in argo:
        spec = obj["spec"].get("workflowSpec", obj["spec"])
        leaves = [t for t in spec["templates"] if "container" in t]
        assert leaves, obj["metadata"]["name"]
        for template in leaves:
            assert_hardened_pod(template)


def test_submitted_analysis_workflows_are_hardened():
    import datetime as dt

    from jetstream import synthetic
    from jetstream.commands.loading import load_many
    from jetstream.graph import plan
    from jetstream.runners import argo
    from jetstream.runners.common import RunSettings

    specs, _ = load_many(str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR)
    settings = RunSettings(experiments="x.json", warehouse="duckdb:w", out="o")
    workflow = argo.build_workflow(plan(specs, dt.date(2026, 1, 13)), settings).to_dict()
    leaves = [t for t in workflow["spec"]["templates"] if "container" in t]
    assert leaves
    for template in leaves:
        assert_hardened_pod(template)


def test_webhook_admission_policy(rendered):
    variant, values, namespace, objs = rendered
    policies = kind(objs, "ValidatingAdmissionPolicy")
    bindings = kind(objs, "ValidatingAdmissionPolicyBinding")
    if variant == "no-webhook":
        assert policies == [] and bindings == []
        return
    (policy,), (binding,) = policies, bindings
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["argoproj.io"] and rule["resources"] == ["workflows"]
    assert set(rule["operations"]) >= {"CREATE", "UPDATE"}
    sa = values.get("serviceAccounts", {})
    webhook = sa.get("webhook", {}).get("name", "jetstream-webhook")
    analysis = sa.get("analysis", {}).get("name", "jetstream")
    (condition,) = spec["matchConditions"]
    assert condition["expression"] == (
        f"request.userInfo.username == 'system:serviceaccount:{namespace}:{webhook}'"
    )
    text = " ".join(v["expression"] for v in spec["validations"])
    image = one(objs, "ConfigMap")["data"]["JETSTREAM_IMAGE"]
    assert f"serviceAccountName == '{analysis}'" in text
    assert f"p.value == '{image}'" in text
    assert "t.container.args[0] == 'task'" in text
    assert all(v["message"] for v in spec["validations"])
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": namespace}
    }


def test_admission_policy_can_be_disabled():
    objs = render({"webhook": {"admissionPolicy": {"enabled": False}}}, "jetstream", NAMESPACE)
    assert not kind(objs, "ValidatingAdmissionPolicy")
    assert not kind(objs, "ValidatingAdmissionPolicyBinding")


def test_network_policy_ingress_namespace_is_a_value():
    values = {"webhook": {"networkPolicy": {"ingressNamespace": "gateway-system"}}}
    policy = one(render(values, "jetstream", NAMESPACE), "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}}}
    ]


# -- lint, schema, drift -----------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_helm_lint_strict_is_clean(variant):
    values, _, namespace = VARIANTS[variant]
    report = helm.lint(str(CHART), values, strict=True, namespace=namespace, kube_version="v1.33.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"webhook": {"replicas": 2}}, "/webhook/replicas"),
        ({"webhook": {"runner": "cloud"}}, "/webhook/runner"),
        ({"webhook": {"secretKey": "a key"}}, "/webhook/secretKey"),
        ({"webhook": {"inlineSecret": "hunter2"}}, "inlineSecret"),
        ({"serviceAccounts": {"webhook": {"name": "Bad_Name"}}}, "/serviceAccounts/webhook/name"),
        ({"settings": {"warehouse": "postgres:x"}}, "/settings/warehouse"),
        ({"settings": {"extra": {"PATH": "/x"}}}, "PATH' does not match"),
        ({"settings": {"configRepo": "relative/dir"}}, "/settings/configRepo"),
        ({"settings": {"configRepoPath": "/config"}}, "configRepoPath"),
        ({"webhook": {"networkPolicy": {"ingressFrom": [{}]}}}, "/webhook/networkPolicy"),
        ({"webhook": {"networkPolicy": {"ingressNamespace": ""}}}, "ingressNamespace"),
    ],
)
def test_values_schema_rejects(bad, where):
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.render(bad, name="jetstream", namespace=NAMESPACE)
    assert where in str(err.value)


def _render_script():
    spec = importlib.util.spec_from_file_location(
        "render_chart", REPO / "scripts" / "render_chart.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_k8s_and_workflow_copies_do_not_drift():
    drift = _render_script().stale()
    assert drift == [], "out of date (run `python scripts/render_chart.py`): " + ", ".join(drift)


def test_k8s_matches_a_default_render():
    objs = render({}, "jetstream", NAMESPACE)
    committed = []
    for path in sorted((REPO / "k8s").glob("*.yaml")):
        committed += [d for d in yaml.safe_load_all(path.read_text()) if d]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, committed)) == sorted(map(key, objs))

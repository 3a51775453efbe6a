"""How every jetstream workflow pod runs: as the image's unprivileged user (10001), with a
read-only root filesystem, no privilege escalation, every capability dropped and the
container runtime's default seccomp profile. The only writable paths are two emptyDirs:
`/tmp` and the config-repository cache (`JETSTREAM_CACHE_DIR`, where a git URL given as
`--config-repo` is cloned). Pod Security Admission's `restricted` profile admits such a
main container.

Used by the installed objects (`templates.py`) and by the submitted analysis workflows
(`build.py`): each container template gets `fields()` (template securityContext,
container securityContext, its emptyDirs) and `env()`.
"""

from __future__ import annotations

from typing import Any

USER = 10001  # the image's user and group (Dockerfile)
TMP = "/tmp"
CACHE = "/var/cache/jetstream"
TMP_SIZE = "1Gi"
CACHE_SIZE = "1Gi"


def env() -> list[Any]:
    """HOME (git and Python caches) and the config-repo cache, both on the emptyDirs."""
    from hera.workflows import Env

    return [Env(name="HOME", value=TMP), Env(name="JETSTREAM_CACHE_DIR", value=CACHE)]


def fields() -> dict[str, Any]:
    """Keyword arguments of a hera `Container` template: the pod and container security
    contexts and the two emptyDirs (template volumes, mounted in the main container)."""
    from hera.workflows import EmptyDirVolume
    from hera.workflows.models import (
        Capabilities,
        PodSecurityContext,
        Quantity,
        SeccompProfile,
        SecurityContext,
    )

    return {
        "pod_security_context": PodSecurityContext(
            run_as_non_root=True,
            run_as_user=USER,
            run_as_group=USER,
            fs_group=USER,
            seccomp_profile=SeccompProfile(type="RuntimeDefault"),
        ),
        "security_context": SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            privileged=False,
            capabilities=Capabilities(drop=["ALL"]),
            seccomp_profile=SeccompProfile(type="RuntimeDefault"),
        ),
        "volumes": [
            EmptyDirVolume(name="tmp", mount_path=TMP, size_limit=Quantity(TMP_SIZE)),
            EmptyDirVolume(name="config-cache", mount_path=CACHE, size_limit=Quantity(CACHE_SIZE)),
        ],
    }


def apply(template: dict[str, Any]) -> dict[str, Any]:
    """The same hardening on a container template written as a plain manifest dict (the
    submitted analysis workflows): what `fields()` and `env()` give a hera template."""
    template["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": USER,
        "runAsGroup": USER,
        "fsGroup": USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    template["volumes"] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
        {"name": "config-cache", "emptyDir": {"sizeLimit": CACHE_SIZE}},
    ]
    container = template["container"]
    container.setdefault("env", []).extend(
        [{"name": "HOME", "value": TMP}, {"name": "JETSTREAM_CACHE_DIR", "value": CACHE}]
    )
    container["volumeMounts"] = [
        {"name": "tmp", "mountPath": TMP},
        {"name": "config-cache", "mountPath": CACHE},
    ]
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return template

"""The deployment artefacts in `deploy/`, read into plain values the tests compare.

A "Worldbase container" is one that runs the project's image: in compose a service built
from deploy/Dockerfile, in Kubernetes a container whose image is `worldbase`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_ENV_EXAMPLE = DEPLOY / ".env.example"
K8S = DEPLOY / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
# PostGIS, Redis and MinIO in the cluster (a kustomization of its own).
K8S_BACKING = K8S / "backing-services"
DOCKERIGNORE = ROOT / ".dockerignore"
# The image name the manifests use (kustomization.yaml's `images:` renames it).
K8S_IMAGE = "worldbase"
# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`.
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@dataclass
class Container:
    """One Worldbase process as an artefact declares it."""

    where: str  # "compose:api", "k8s:Deployment/worldbase-api/api"
    args: list[str]  # after the image's `worldbase` entry point
    env: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # the raw service/container
    pod: dict[str, Any] = field(default_factory=dict)  # k8s: the pod spec

    @property
    def command(self) -> str:
        return self.args[0]


# --- Dockerfile --------------------------------------------------------------------------------


def dockerfile() -> Any:
    from dockerfile_parse import DockerfileParser

    return DockerfileParser(str(DOCKERFILE))


def stages(parser: Any) -> list[list[dict[str, Any]]]:
    """The instructions of each build stage, in order (global ARGs before the first FROM
    are left out)."""
    result: list[list[dict[str, Any]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(instruction)
    return result


def exec_form(value: str) -> list[str]:
    """CMD/ENTRYPOINT in exec (JSON) form; shell form is refused (no signal forwarding)."""
    words = json.loads(value)
    assert isinstance(words, list), value
    return [str(word) for word in words]


def image_default_args() -> list[str]:
    """What the image runs with no arguments: CMD after ENTRYPOINT's `worldbase`."""
    final = stages(dockerfile())[-1]
    entrypoint = exec_form(next(i["value"] for i in final if i["instruction"] == "ENTRYPOINT"))
    cmd = exec_form(next(i["value"] for i in final if i["instruction"] == "CMD"))
    assert entrypoint[-1] == "worldbase", entrypoint
    return cmd


# --- compose -----------------------------------------------------------------------------------


def env_example() -> dict[str, str]:
    values = {}
    for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's variable substitution, enough for this file; a required variable missing
    from `variables` is an error (so .env.example must name every one)."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = variables.get(name)
        if op in (":-", "-"):
            return value if value else arg
        if op in (":?", "?") and not value:
            raise KeyError(f"{name} is required by compose.yaml ({arg}) but not in .env.example")
        return value or ""

    escaped = text.replace("$$", "\0")
    return _INTERPOLATION.sub(replace, escaped).replace("\0", "$")


def compose() -> dict[str, Any]:
    """compose.yaml with its variables taken from .env.example."""
    text = interpolate(COMPOSE_FILE.read_text(), env_example())
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def _is_worldbase_service(service: dict[str, Any]) -> bool:
    build = service.get("build") or {}
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"


def compose_containers() -> list[Container]:
    default = image_default_args()
    containers = []
    for name, service in compose()["services"].items():
        if _is_worldbase_service(service):
            env = {key: str(value) for key, value in (service.get("environment") or {}).items()}
            args = list(service.get("command") or default)
            containers.append(Container(f"compose:{name}", args, env, service))
    return containers


# --- Kubernetes --------------------------------------------------------------------------------


def k8s_files() -> list[Path]:
    """Every manifest, the backing services' included."""
    return sorted(K8S.rglob("*.yaml"))


def k8s_documents(paths: list[Path] | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in paths if paths is not None else k8s_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    kind = resource["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return dict(resource["spec"]["template"]["spec"])
    if kind == "CronJob":
        return dict(resource["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return None


def k8s_resources() -> list[dict[str, Any]]:
    """Every resource kustomization.yaml applies (the Secret example besides)."""
    listed = [K8S / name for name in kustomization()["resources"]]
    return [document for _, document in k8s_documents([*listed, K8S / "secret.example.yaml"])]


def kustomization(folder: Path = K8S) -> dict[str, Any]:
    document = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert isinstance(document, dict)
    return document


def backing_resources() -> list[dict[str, Any]]:
    listed = [K8S_BACKING / name for name in kustomization(K8S_BACKING)["resources"]]
    return [document for _, document in k8s_documents(listed)]


def k8s_containers() -> list[Container]:
    """Worldbase containers with their environment resolved as the pod would see it:
    envFrom (the ConfigMap, the example Secret) first, then `env`."""
    resources = k8s_resources()
    sources: dict[tuple[str, str], dict[str, str]] = {}
    for resource in resources:
        if resource["kind"] in ("ConfigMap", "Secret"):
            data = resource.get("data") or resource.get("stringData") or {}
            sources[(resource["kind"], resource["metadata"]["name"])] = {
                key: str(value) for key, value in data.items()
            }
    containers = []
    for resource in resources:
        pod = pod_spec(resource)
        if pod is None:
            continue
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            if container["image"].split(":")[0] != K8S_IMAGE:
                continue
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env.update(sources[("ConfigMap", source["configMapRef"]["name"])])
                if "secretRef" in source:
                    env.update(sources[("Secret", source["secretRef"]["name"])])
            for item in container.get("env", []):
                env[item["name"]] = str(item["value"])
            where = f"k8s:{resource['kind']}/{resource['metadata']['name']}/{container['name']}"
            args = list(container.get("args") or image_default_args())
            containers.append(Container(where, args, env, container, pod))
    return containers


def all_containers() -> list[Container]:
    return compose_containers() + k8s_containers()


def by_command(containers: list[Container]) -> dict[str, list[Container]]:
    result: dict[str, list[Container]] = {}
    for container in containers:
        result.setdefault(container.command, []).append(container)
    return result

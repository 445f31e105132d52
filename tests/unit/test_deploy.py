"""The deployment files parse and agree with each other and with the code: every env file,
ConfigMap key, Secret key, port, probe, image and entrypoint role they name exists.

Docker does not run on these machines, so this is what can be checked without it; the
entrypoint itself runs against the local stack in tests/integration/test_entrypoint.py.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.app import app
from service.core.secrets import FileSecrets
from service.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
OPENSHIFT = DOCKER / "openshift"
ENTRYPOINT_ROLES = {"api", "worker", "recovery", "consumer", "migrate"}
VARIABLES = {f"HOSTMASTER_{name.upper()}" for name in Settings.model_fields} | {"APP_ENV"}
ROUTES = set(app.openapi()["paths"])


def load_all(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((OPENSHIFT / "kustomization.yaml").read_text())
    return [document for name in kustomization["resources"] for document in load_all(OPENSHIFT / name)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [document for document in manifests() if document["kind"] == kind]


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return parsed


# --- compose


def test_compose_has_every_service_the_product_needs(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {
        "postgres",
        "rabbitmq",
        "kafka",
        "bind",
        "migrate",
        "api",
        "worker",
        "consumer",
    }
    assert "127.0.0.1:15672:15672" in compose["services"]["rabbitmq"]["ports"]
    assert compose["services"]["rabbitmq"]["image"].endswith("-management")
    assert "KAFKA_PROCESS_ROLES" in compose["services"]["kafka"]["environment"]  # KRaft, no ZooKeeper


def test_compose_dependencies_exist_and_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on a service that does not exist: {needed}"
            wanted = condition["condition"]
            assert wanted in ("service_healthy", "service_completed_successfully"), f"{name} → {needed}"
            if wanted == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits for {needed}'s health, which has no check"


def test_long_running_compose_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "rabbitmq", "kafka", "bind", "api", "worker"):
        assert "healthcheck" in compose["services"][name], name


def test_compose_env_files_and_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for path in service.get("env_file", []):
            assert (DOCKER / path).resolve().is_file(), f"{name}: env file {path} is missing"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DOCKER / source).resolve().exists(), f"{name}: {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"


def test_compose_hostmaster_services_use_the_image_and_known_roles(compose: dict[str, Any]) -> None:
    for name in ("migrate", "api", "worker", "recovery", "consumer"):
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert service["command"][0] in ENTRYPOINT_ROLES, name
    assert "127.0.0.1:8000:8000" in compose["services"]["api"]["ports"]


def test_env_files_name_only_settings_that_exist() -> None:
    for path in sorted((ROOT / "envs").glob(".env.*")):
        unknown = set(env_file(path)) - VARIABLES
        assert not unknown, f"{path.name} sets what no setting reads: {unknown}"


# --- OpenShift / Kubernetes


def test_every_manifest_parses_and_the_kustomization_lists_every_file() -> None:
    listed = set(yaml.safe_load((OPENSHIFT / "kustomization.yaml").read_text())["resources"])
    present = {path.name for path in OPENSHIFT.glob("*.yaml")} - {"kustomization.yaml", "secrets.template.yaml"}
    assert listed == present
    for document in manifests():
        assert {"apiVersion", "kind", "metadata"} <= set(document)


def test_the_configmap_mirrors_envs_prod_and_names_only_settings() -> None:
    (configmap,) = of_kind("ConfigMap")
    data = configmap["data"]

    assert set(data) <= VARIABLES
    for name, value in env_file(ROOT / "envs" / ".env.prod").items():
        assert data.get(name) == value, f"the ConfigMap's {name} differs from envs/.env.prod"
    assert data["APP_ENV"] == "prod"


def test_the_secret_template_s_keys_are_files_the_secrets_provider_reads(tmp_path: Path) -> None:
    (secrets,) = [
        doc for doc in load_all(OPENSHIFT / "secrets.template.yaml") if doc["metadata"]["name"] == "hostmaster-secrets"
    ]
    secret_settings = {name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)}
    for key in secrets["stringData"]:  # a secret volume makes each key a file of that name
        (tmp_path / key).write_text(f"value of {key}")
    provider = FileSecrets(tmp_path)
    for key in secrets["stringData"]:
        setting = key.removeprefix("hostmaster_")
        assert setting in secret_settings, f"{key} is no secret setting"
        found = provider.get(setting)
        assert found is not None, f"the provider does not read {setting} from a file named {key}"
        assert found.get_secret_value() == f"value of {key}"


def test_compose_setup_writes_the_consumer_key_where_the_consumer_reads_it(tmp_path: Path) -> None:
    (written,) = re.findall(r'>"\$\{HOSTMASTER_SECRETS_DIR:\?\}/([^"]+)"', (DOCKER / "setup.sh").read_text())
    (tmp_path / written).write_text("hm_key")
    found = FileSecrets(tmp_path).get("consumer_api_key")
    assert found is not None, f"setup.sh writes {written}; the consumer reads hostmaster_consumer_api_key"
    assert found.get_secret_value() == "hm_key"


def test_secret_references_resolve_to_the_template_and_are_secrets_the_settings_read() -> None:
    templates = {document["metadata"]["name"]: document for document in load_all(OPENSHIFT / "secrets.template.yaml")}
    workloads = of_kind("Deployment") + of_kind("Job")
    for workload in workloads:
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            sources = [volume["secret"]] if "secret" in volume else []
            sources += [source["secret"] for source in volume.get("projected", {}).get("sources", [])]
            for source in sources:
                name = source.get("secretName") or source.get("name")
                assert name in templates, f"{workload['metadata']['name']} mounts an unknown secret {name}"
                for item in source.get("items", []):
                    assert item["key"] in templates[name]["stringData"]
                    assert item["path"].startswith("tsig/")


def test_workloads_read_the_configmap_mount_secrets_where_settings_look_and_use_known_roles() -> None:
    (configmap,) = of_kind("ConfigMap")
    for workload in of_kind("Deployment") + of_kind("Job"):
        for container in containers(workload):
            assert container["image"] == "hostmaster"
            assert container["args"][0] in ENTRYPOINT_ROLES
            assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert configmap["data"]["HOSTMASTER_SECRETS_DIR"] in mounts
            assert "limits" in container["resources"]
            assert "requests" in container["resources"]


def test_api_worker_and_consumer_have_probes_on_ports_they_open() -> None:
    (configmap,) = of_kind("ConfigMap")
    ports = {
        "api": int(configmap["data"]["HOSTMASTER_API_PORT"]),
        "worker": int(configmap["data"]["HOSTMASTER_METRICS_PORT"]),
        "consumer": int(configmap["data"]["HOSTMASTER_METRICS_PORT"]),
    }
    deployments = {deployment["metadata"]["name"]: deployment for deployment in of_kind("Deployment")}
    for role, port in ports.items():
        (container,) = containers(deployments[f"hostmaster-{role}"])
        named = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert named[get["port"]] == port, f"{role} {probe} port"
            if role == "api":
                assert get["path"] in ROUTES, f"the API has no route {get['path']}"


def test_the_api_is_reachable_through_service_and_route() -> None:
    (service,) = of_kind("Service")
    (route,) = of_kind("Route")
    deployments = {deployment["metadata"]["name"]: deployment for deployment in of_kind("Deployment")}
    labels = deployments["hostmaster-api"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert route["spec"]["to"]["name"] == service["metadata"]["name"]
    (api,) = containers(deployments["hostmaster-api"])
    assert {port["name"] for port in api["ports"]} >= {service["spec"]["ports"][0]["targetPort"]}


def test_autoscalers_and_disruption_budgets_point_at_deployments() -> None:
    deployments = {deployment["metadata"]["name"]: deployment for deployment in of_kind("Deployment")}
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind("HorizontalPodAutoscaler")}
    assert scaled == {"hostmaster-api", "hostmaster-worker"}
    assert scaled <= set(deployments)
    for budget in of_kind("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(
            selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
            for deployment in deployments.values()
        ), budget["metadata"]["name"]


# --- the image and its entrypoint


def test_the_dockerfile_builds_with_uv_from_the_lock_and_runs_as_a_user_without_compilers() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]

    assert len(stages) >= 2, "multi-stage"
    assert "uv sync --frozen --no-dev" in stages[0]
    final = stages[-1]
    assert "uv==" in stages[0]  # a pinned uv in the build stage only
    assert not re.search(r"^(RUN|COPY) .*\buv\b", final, flags=re.MULTILINE)
    assert "pip install" not in final
    assert not re.search(r"\b(gcc|build-essential|clang|make)\b", final)
    assert re.search(r"^USER (?!0\b|root\b)\S+", final, flags=re.MULTILINE)
    copied = set(re.findall(r"^COPY (\S+)/ ", stages[0], flags=re.MULTILINE))
    assert copied >= {"service", "workers", "consumer", "db", "envs"}
    assert 'ENTRYPOINT ["hostmaster-entrypoint"]' in final


@pytest.mark.parametrize("script", ["entrypoint.sh", "setup.sh", "bind/keys.sh"])
def test_the_container_scripts_are_valid_shell(script: str) -> None:
    shell = "sh" if script.endswith("keys.sh") else "bash"
    result = subprocess.run([shell, "-n", str(DOCKER / script)], capture_output=True, text=True, timeout=10)

    assert result.returncode == 0, result.stderr


def test_the_entrypoint_knows_every_role_the_files_use(compose: dict[str, Any]) -> None:
    text = (DOCKER / "entrypoint.sh").read_text()
    for role in ENTRYPOINT_ROLES:
        assert re.search(rf"^  {role}\)", text, flags=re.MULTILINE), role


def test_the_bind_config_of_compose_allows_updates_and_transfers_with_the_key_setup_registers() -> None:
    named = (DOCKER / "bind" / "named.conf").read_text()
    setup = (DOCKER / "setup.sh").read_text()
    key = re.search(r"--key (\S+)", setup)
    assert key is not None
    assert f'allow-update {{ key "{key.group(1)}"; }}' in named
    assert f'allow-transfer {{ key "{key.group(1)}"; }}' in named


def test_the_compose_tsig_key_files_are_made_0600_and_owned_by_who_reads_them(tmp_path: Path) -> None:
    for directory in ("keys", "secrets", "zones", "seed", "bin"):
        (tmp_path / directory).mkdir()
    (tmp_path / "seed" / "example.test.zone").write_text("$ORIGIN example.test.\n")
    keygen = tmp_path / "bin" / "tsig-keygen"  # what BIND's tsig-keygen prints
    keygen.write_text(
        '#!/bin/sh\nprintf \'key "%s" {\\n\\talgorithm hmac-sha256;\\n\\tsecret "c2VjcmV0";\\n};\\n\' "$3"\n'
    )
    keygen.chmod(0o755)
    me = f"{os.getuid()}:{os.getgid()}"
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        **{f"{name.upper()}_DIR": str(tmp_path / name) for name in ("keys", "secrets", "zones", "seed")},
        "NAMED_USER": me,
        "SECRETS_OWNER": me,
    }
    subprocess.run(["sh", str(DOCKER / "bind" / "keys.sh")], env=env, check=True, capture_output=True, timeout=30)

    for path in (tmp_path / "keys" / "hostmaster-key.key", tmp_path / "secrets" / "tsig" / "hostmaster-key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is {oct(path.stat().st_mode)}"
    assert (tmp_path / "secrets" / "tsig" / "hostmaster-key").read_text().strip() == "c2VjcmV0"


def test_a_postgresql_that_refuses_is_a_sentence_not_a_shell_error() -> None:
    port = _closed_port()
    script = f"source {ROOT / 'scripts' / 'lib.sh'}; ensure_database hostmaster_nowhere"
    env = {**os.environ, "PG_HOST": "127.0.0.1", "PG_PORT": str(port)}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert f"PostgreSQL at 127.0.0.1:{port} does not let user hostmaster in" in result.stderr, result.stderr
    assert "command not found" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    # OpenShift's own kinds (Route) and Kustomization have no upstream schema: warned, and
    # checked by the tests above; everything else must validate, strictly.
    manifests = sorted(str(path) for path in OPENSHIFT.glob("*.yaml"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet", *manifests],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unknown = [line for line in result.stdout.splitlines() if line.startswith("WARN")]
    assert all("kind Route " in line or "kind Kustomization " in line for line in unknown), unknown


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), "--no-color", str(DOCKER / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr

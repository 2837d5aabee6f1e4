"""deploy/kubernetes: the Kustomize base rendered here (it lists resources and sets a namespace, nothing
else) and every resource validated against the Kubernetes 1.37 schemas that kubernetes-validate ships
(strict: an unknown field fails), offline; then what must hold for the product to work."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

BASE = REPO / "deploy" / "kubernetes"
KUBERNETES = "1.37"
WORKLOADS = ("chatsite-web", "chatsite-worker", "chatsite-embed-gpu", "chatsite-beat")


def render(base: Path = BASE) -> list[dict]:
    """What `kustomize build` gives for this base: its resources, each in the namespace it sets."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources"}, "render() knows no more"
    resources = []
    for name in kustomization["resources"]:
        # libyaml's parser (the pure-Python one took 0.3 s per render, and the tests render ~35 times)
        for resource in yaml.load_all((base / name).read_text(), Loader=yaml.CSafeLoader):
            if resource["kind"] != "Namespace":
                resource["metadata"]["namespace"] = kustomization["namespace"]
            resources.append(resource)
    return resources


def by_name(kind: str, name: str) -> dict:
    (found,) = [r for r in render() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def test_the_base_lists_every_file_of_its_folder():
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("resource", render(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_every_resource_validates_against_the_kubernetes_schema(resource):
    assert kubernetes_validate.validate(resource, KUBERNETES, strict=True) == KUBERNETES


def test_a_wrong_resource_fails_validation():
    web = by_name("Deployment", "chatsite-web")
    web["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES, strict=True)
    web = by_name("Deployment", "chatsite-web")
    containers(web)[0]["livenessProbes"] = containers(web)[0].pop("livenessProbe")  # a typo: strict refuses it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES, strict=True)


def test_beat_is_one_replica_replaced_never_rolled():
    beat = by_name("Deployment", "chatsite-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert containers(beat)[0]["command"][:4] == ["celery", "-A", "chatsite", "beat"]
    assert not [r for r in render() if r["kind"] == "HorizontalPodAutoscaler" and "beat" in r["metadata"]["name"]]


def test_the_gpu_worker_embeds_alone_on_a_gpu():
    embed = by_name("Deployment", "chatsite-embed-gpu")
    (container,) = containers(embed)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert embed["spec"]["template"]["spec"]["nodeSelector"]
    assert {"name": "EMBEDDING_DEVICE", "value": "cuda"} in container["env"]
    command = container["command"]
    assert command[command.index("--queues") + 1] == "embed" and command[command.index("--concurrency") + 1] == "1"


def test_the_cpu_workers_take_every_queue_but_embed():
    """Between them the two worker kinds consume every queue the settings route tasks to."""
    from django.conf import settings

    queues = {settings.CELERY_TASK_DEFAULT_QUEUE} | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    command = containers(by_name("Deployment", "chatsite-worker"))[0]["command"]
    cpu = set(command[command.index("--queues") + 1].split(","))
    assert cpu == {"celery", "ingest"} and cpu | {"embed"} == queues


def test_the_ingress_does_not_buffer_server_sent_events():
    ingress = by_name("Ingress", "chatsite")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 300
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "chatsite-web"


def test_the_web_scales_and_everything_is_probed_and_budgeted():
    hpa = by_name("HorizontalPodAutoscaler", "chatsite-web")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatsite-web"}
    assert hpa["spec"]["minReplicas"] >= 2
    for name in ("chatsite-web", "chatsite-worker", "chatsite-embed-gpu"):
        workload = by_name("Deployment", name)
        assert containers(workload)[0]["livenessProbe"], name
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        (budget,) = [
            r
            for r in render()
            if r["kind"] == "PodDisruptionBudget" and r["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        ]
        assert budget, name
    web = containers(by_name("Deployment", "chatsite-web"))[0]
    assert web["readinessProbe"]["httpGet"]["port"] == "http"
    host = {h["name"]: h["value"] for h in web["readinessProbe"]["httpGet"]["httpHeaders"]}["Host"]
    assert host in by_name("ConfigMap", "chatsite-config")["data"]["ALLOWED_HOSTS"].split(",")
    service = by_name("Service", "chatsite-web")
    assert (
        service["spec"]["selector"].items()
        <= by_name("Deployment", "chatsite-web")["spec"]["template"]["metadata"]["labels"].items()
    )


def test_migrations_run_in_a_job_and_the_workloads_wait_for_them():
    job = by_name("Job", "chatsite-migrate")
    assert "manage.py migrate --noinput" in " ".join(containers(job)[0]["command"])
    for name in WORKLOADS:
        workload = by_name("Deployment", name)
        (wait,) = workload["spec"]["template"]["spec"]["initContainers"]
        assert "migrate --check" in " ".join(wait["command"]), name
        assert "migrate --noinput" not in " ".join(containers(workload)[0]["command"]), name


def test_settings_come_from_the_config_map_and_secrets_from_files():
    config = by_name("ConfigMap", "chatsite-config")["data"]
    secret = by_name("Secret", "chatsite-secrets")["stringData"]
    assert (
        "@" in config["DATABASE_URL"] and ":" not in config["DATABASE_URL"].split("//")[1].split("@")[0]
    )  # no password
    for name in (*WORKLOADS, "chatsite-migrate"):
        workload = by_name("Job" if name == "chatsite-migrate" else "Deployment", name)
        pod = workload["spec"]["template"]["spec"]
        mounts = {v["name"]: v for v in pod["volumes"]}
        assert mounts["secrets"]["secret"]["secretName"] == "chatsite-secrets"
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["envFrom"] == [{"configMapRef": {"name": "chatsite-config"}}]
            files = {e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_FILE")}
            assert {Path(path).name for path in files.values()} <= set(secret), name
            assert not [e for e in container["env"] if "valueFrom" in e], "secrets are files, not variables"
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/data", "/run/secrets/chatsite"}


def test_check_deploy_is_clean_with_the_config_map_and_the_secret_files(tmp_path):
    """The web container's environment (the ConfigMap, its own variables, the Secret as files)."""
    import os
    import subprocess
    import sys

    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in by_name("Secret", "chatsite-secrets")["stringData"].items():
        (secrets_dir / name).write_text(value if name != "SECRET_KEY" else "k" * 20 + os.urandom(24).hex())
    (web,) = containers(by_name("Deployment", "chatsite-web"))
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env |= by_name("ConfigMap", "chatsite-config")["data"]
    env |= {e["name"]: e["value"].replace("/run/secrets/chatsite", str(secrets_dir)) for e in web["env"]}
    env |= {"DJANGO_SETTINGS_MODULE": "chatsite.settings", "DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

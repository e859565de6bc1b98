"""The deployment descriptions: every overlay renders, every object is valid, and
the manifests agree with the code (topics, settings) and with the compose file."""

from __future__ import annotations

import importlib
import importlib.resources
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from opr_shared.events.envelope import SERVICES
from opr_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.33.0"  # the oldest version the manifests support
BUCKET_SERVICES = {"documents", "card"}

# Custom resources: the fields their operators require (their schemas are not
# bundled with the Kubernetes ones).
CRD_REQUIRED: dict[str, list[str]] = {
    "Kafka": ["spec.kafka.version", "spec.kafka.listeners", "spec.entityOperator"],
    "KafkaNodePool": [
        "metadata.labels.strimzi.io/cluster",
        "spec.replicas",
        "spec.roles",
        "spec.storage",
    ],
    "KafkaTopic": [
        "metadata.labels.strimzi.io/cluster",
        "spec.topicName",
        "spec.partitions",
        "spec.replicas",
    ],
    "KafkaUser": [
        "metadata.labels.strimzi.io/cluster",
        "spec.authentication.type",
        "spec.authorization.acls",
    ],
    "MongoDBCommunity": [
        "spec.members",
        "spec.type",
        "spec.version",
        "spec.security.authentication.modes",
        "spec.users",
    ],
}


def lookup(obj: dict[str, Any], dotted: str) -> Any:
    """Follow a dotted path; label keys may contain dots and slashes."""
    if dotted.startswith("metadata.labels."):
        return (obj.get("metadata", {}).get("labels") or {}).get(dotted[len("metadata.labels.") :])
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to render the manifests"
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] == kind]


def service_deployments_of(overlay: str, component: str) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in of_kind(overlay, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    }


def service_deployments(overlay: str) -> dict[str, dict[str, Any]]:
    return service_deployments_of(overlay, "service")


def consumer_deployments(overlay: str) -> dict[str, dict[str, Any]]:
    """Deployments consuming a service's events apart from its API, by service."""
    return {
        d["metadata"]["labels"]["app.kubernetes.io/name"]: d
        for d in service_deployments_of(overlay, "consumer").values()
    }


def backend_deployments(overlay: str) -> dict[str, dict[str, Any]]:
    """Every Deployment running a service's image, by Deployment name."""
    return service_deployments(overlay) | service_deployments_of(overlay, "consumer")


def service_of(deployment: dict[str, Any]) -> str:
    name: str = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def consumes(overlay: str, deployment: str) -> bool:
    """Whether the Deployment's settings (ConfigMap and env) leave its consumer on."""
    setting = str(k8s_settings(overlay)[deployment].get("CONSUMER_ENABLED", "true"))
    return setting.lower() in {"1", "true", "yes", "on"}


def consuming_deployment(overlay: str, service: str) -> str:
    """The name of the Deployment whose replicas consume the service's events."""
    apart = consumer_deployments(overlay).get(service)
    return service if apart is None else str(apart["metadata"]["name"])


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_there_are_dev_and_production_overlays() -> None:
    assert {"dev", "production"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid(overlay: str) -> None:
    problems = []
    for obj in rendered(overlay):
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in CRD_REQUIRED:
            missing = [f for f in CRD_REQUIRED[kind] if lookup(obj, f) in (None, [], "")]
            if missing:
                problems.append(f"{kind}/{name} lacks {missing}")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{kind}/{name}: {exc.message} at {list(exc.path)}")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_all_its_objects(overlay: str) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered(overlay)}
    for service in SERVICES:
        for kind in (
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ServiceAccount",
        ):
            assert (kind, service) in names, (kind, service)
        assert ("ConfigMap", f"opr-{service}-config") in names
    assert ("NetworkPolicy", "default-deny") in names
    paths = {
        p["path"]
        for ingress in of_kind(overlay, "Ingress")
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert {f"/api/{s}" for s in SERVICES} | {"/"} <= paths
    assert ("Deployment", "portal") in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_are_hardened_probed_and_bounded(overlay: str) -> None:
    for name, deployment in backend_deployments(overlay).items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        # Longer than uvicorn's 20 s drain plus the preStop pause.
        assert pod["terminationGracePeriodSeconds"] > 25, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            assert {"cpu", "memory"} <= set(resources["requests"]), name
    for kind in ("StatefulSet", "Job", "Deployment"):
        for obj in of_kind(overlay, kind):
            pod = obj["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
            for container in pod["containers"]:
                assert "memory" in container["resources"]["limits"], obj["metadata"]["name"]


def settings_class(service: str) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"{service}.settings").Settings
    return cls


def service_topics(service: str) -> tuple[set[str], set[str]]:
    """(topics the service's code uses, topics it consumes) from its composition root."""
    main = importlib.import_module(f"{service}.main")
    settings = settings_class(service)(
        environment="test", s3_endpoint="http://127.0.0.1:9", jwks_url="http://127.0.0.1:9/jwks"
    )
    runtime = main.build_runtime(settings)
    return set(runtime.topics_used()), set(runtime.subscriptions.topics)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_topic_a_service_uses_is_declared_and_allowed(overlay: str) -> None:
    declared = {t["spec"]["topicName"]: t for t in of_kind(overlay, "KafkaTopic")}
    users = {u["metadata"]["name"]: u for u in of_kind(overlay, "KafkaUser")}
    hpas = {h["metadata"]["name"]: h for h in of_kind(overlay, "HorizontalPodAutoscaler")}
    for service in SERVICES:
        used, consumed = service_topics(service)
        assert used - set(declared) == set(), f"{service} uses undeclared topics"
        acls = users[f"opr-{service}"]["spec"]["authorization"]["acls"]
        allowed: dict[str, set[str]] = {}
        for acl in acls:
            allowed.setdefault(acl["resource"]["name"], set()).update(acl["operations"])
        assert "Write" in allowed[f"{service}.events"], service
        assert "Write" in allowed[f"{service}.events.dlq"], service
        assert "Read" in allowed[service], f"{service} cannot join its consumer group"
        hpa = hpas[consuming_deployment(overlay, service)]
        for topic in consumed:
            assert "Read" in allowed.get(topic, set()), f"{service} cannot read {topic}"
            # More replicas than partitions would leave consumers idle.
            assert hpa["spec"]["maxReplicas"] <= declared[topic]["spec"]["partitions"]
    if overlay == "production":
        for topic in declared.values():
            assert topic["spec"]["replicas"] == 3
            assert topic["spec"]["config"]["min.insync.replicas"] == 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_own_credentials(overlay: str) -> None:
    [mongo] = of_kind(overlay, "MongoDBCommunity")
    users = {u["name"]: u for u in mongo["spec"]["users"]}
    for deployment in backend_deployments(overlay).values():
        service = service_of(deployment)
        assert users[service]["roles"] == [{"name": "readWrite", "db": service}]
        env = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
            for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
            if "valueFrom" in e
        }
        assert env["MONGODB_URI"] == users[service]["connectionStringSecretName"]
        assert env["KAFKA_SASL_PASSWORD"] == f"opr-{service}"
        if service in BUCKET_SERVICES:
            assert env["S3_ACCESS_KEY"] == f"opr-{service}-s3"


def k8s_settings(overlay: str) -> dict[str, dict[str, Any]]:
    """Per Deployment of a service's image: every environment variable it is given."""
    configmaps = {c["metadata"]["name"]: c["data"] for c in of_kind(overlay, "ConfigMap")}
    out: dict[str, dict[str, Any]] = {}
    for name, deployment in backend_deployments(overlay).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        [source] = container["envFrom"]
        assert source["configMapRef"]["name"] == f"opr-{service_of(deployment)}-config", name
        values: dict[str, Any] = dict(configmaps[source["configMapRef"]["name"]])
        values.update({e["name"]: e.get("value", "<secret>") for e in container.get("env", [])})
        out[name] = values
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_settings_are_settings_the_services_read(overlay: str) -> None:
    for name, values in k8s_settings(overlay).items():
        service = service_of(backend_deployments(overlay)[name])
        known = {field.upper() for field in settings_class(service).model_fields}
        assert set(values) - known == set(), f"{name}: unknown settings"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_consumes_in_exactly_one_deployment(overlay: str) -> None:
    """A service's events are consumed by its API replicas or, for the services the
    local stack also runs apart, by a Deployment of the same image and credentials
    that consumes and nothing else; never by both, never by neither."""
    from opr_shared.devstack.stack import CONSUMER_SUFFIX, CONSUMES_APART

    apis, apart = service_deployments(overlay), consumer_deployments(overlay)
    assert set(apart) == set(CONSUMES_APART)
    hpas = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(overlay, "HorizontalPodAutoscaler")
    }
    pdbs = {p["metadata"]["name"] for p in of_kind(overlay, "PodDisruptionBudget")}
    for service in SERVICES:
        _, consumed = service_topics(service)
        api = apis[service]
        if service not in apart:
            assert consumes(overlay, service) or not consumed, f"nothing consumes {service}"
            continue
        consumer = apart[service]
        assert consumer["metadata"]["name"] == service + CONSUMER_SUFFIX
        assert consumed, f"{service} consumes nothing, yet has a consumer Deployment"
        assert not consumes(overlay, service), f"{service}'s API replicas consume as well"
        assert consumes(overlay, consumer["metadata"]["name"]), f"{service}'s consumer does not"
        a, c = (d["spec"]["template"]["spec"] for d in (api, consumer))
        assert c["containers"][0]["image"] == a["containers"][0]["image"]
        assert c["serviceAccountName"] == a["serviceAccountName"]
        assert c["containers"][0]["envFrom"] == a["containers"][0]["envFrom"]
        secrets = {k: v for k, v in container_env(api).items() if isinstance(v, dict)}
        assert {k: v for k, v in container_env(consumer).items() if isinstance(v, dict)} == secrets
        assert consumer["metadata"]["name"] in hpas
        assert consumer["metadata"]["name"] in pdbs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_keep_api_and_consumer_pods_apart(overlay: str) -> None:
    """Each Deployment owns its pods alone; Services route only to pods serving
    requests; each disruption budget counts the pods of one Deployment."""
    deployments = of_kind(overlay, "Deployment")
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments}
    for d in deployments:
        owned = [
            n for n, labels in pods.items() if matches(d["spec"]["selector"]["matchLabels"], labels)
        ]
        assert owned == [d["metadata"]["name"]], owned
    for svc in of_kind(overlay, "Service"):
        if not svc["spec"].get("selector"):
            continue
        routed = {n for n, labels in pods.items() if matches(svc["spec"]["selector"], labels)}
        if routed:  # the platform's Services select pods their operators create
            assert all(pods[n].get("app.kubernetes.io/component") != "consumer" for n in routed)
    for pdb in of_kind(overlay, "PodDisruptionBudget"):
        counted = [
            n
            for n, labels in pods.items()
            if matches(pdb["spec"]["selector"]["matchLabels"], labels)
        ]
        assert len(counted) <= 1, (pdb["metadata"]["name"], counted)


def secret_standing_in(name: str) -> str:
    """A value of the shape a real secret of ``name`` has."""
    if name == "MONGODB_URI":
        return "mongodb://opr-svc:s3cr3t-from-the-operator@opr-mongodb-svc:27017/?replicaSet=opr"
    return f"{name.lower()}-from-a-kubernetes-secret-4f9c2a"


def test_production_gives_each_service_everything_it_needs_to_start() -> None:
    """Each service, given exactly what the production overlay gives it (secrets stood
    in for by values of their shape), accepts its settings in production mode."""
    for name, values in k8s_settings("production").items():
        service = service_of(backend_deployments("production")[name])
        assert values["ENVIRONMENT"] == "production"
        given = {
            setting.lower(): secret_standing_in(setting) if value == "<secret>" else value
            for setting, value in values.items()
        }
        try:
            settings_class(service)(**given)
        except ValueError as exc:
            pytest.fail(f"{name} would refuse to start in production: {exc}")


COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
# Only Kubernetes speaks to Kafka over SCRAM/TLS and to a real mail relay with a login.
K8S_ONLY = {
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_is_valid() -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose(), schema)


def test_compose_uses_the_real_servers_and_one_origin() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "--replSet" in services["mongodb"]["command"]
    assert services["minio"]["image"].startswith("quay.io/minio/minio:")
    nginx = (COMPOSE.parent / "nginx.conf").read_text()
    for service in SERVICES:
        assert re.search(rf"location /api/{service}/\s", nginx), service
    assert re.search(r"location /\s+\{ set \$u http://portal:8080", nginx)
    portal = service_deployments_of("production", "portal")["portal"]
    image = portal["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[0]
    assert services["portal"]["image"].rsplit(":", 1)[0] == image == "opr/portal"


def test_compose_names_the_same_images_and_settings_as_the_manifests() -> None:
    """Each Deployment of a service's image is a compose service of the same name,
    image, settings and, where it says, the same CONSUMER_ENABLED."""
    services = compose()["services"]
    manifests = k8s_settings("production")
    deployments = backend_deployments("production")
    assert set(deployments) <= set(services)
    for name, deployment in deployments.items():
        service = service_of(deployment)
        image = services[name]["image"].rsplit(":", 1)[0]
        [deployment_image] = [
            c["image"].rsplit(":", 1)[0]
            for c in deployment["spec"]["template"]["spec"]["containers"]
        ]
        assert image == deployment_image == f"opr/{service}"
        environment = services[name]["environment"]
        assert set(environment) == set(manifests[name]) - K8S_ONLY, name
        if "CONSUMER_ENABLED" in manifests[name]:
            assert environment["CONSUMER_ENABLED"] == manifests[name]["CONSUMER_ENABLED"], name
        known = {field.upper() for field in settings_class(service).model_fields}
        assert set(environment) - known == set(), f"{name}: unknown settings in compose"


def test_images_run_with_the_memory_tuning_of_the_local_stack() -> None:
    from opr_shared.devstack.stack import TUNING

    for service in SERVICES:
        dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
        assert "MALLOC_ARENA_MAX=2" in dockerfile, service
        for name, value in TUNING.get(service, {}).items():
            assert f"{name}={value}" in dockerfile, (service, name)
    assert "MALLOC_MMAP_THRESHOLD_" in TUNING["documents"]

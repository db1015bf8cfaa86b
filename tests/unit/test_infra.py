"""The deployment manifests parse and carry what a zero-downtime rollout needs."""

from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_embedding_service_manifest():
    docs = {d["kind"]: d for d in yaml.safe_load_all((INFRA / "kubernetes" / "embedding-service.yaml").read_text())}
    assert set(docs) == {"Deployment", "Service", "PodDisruptionBudget"}
    deployment = docs["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert container["ports"][0]["containerPort"] == 3000
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector

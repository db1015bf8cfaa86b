"""The least-privilege example in infra/aws/ matches the keys the registry really writes: what a trainer
writes when it registers and moves `candidate`, and what a promoter writes when it moves `production`,
each read off a real registry, against the example's Allow and Deny statements (IAM's `*` spans `/`)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from registry.registry import Registry

EXAMPLE = Path(__file__).resolve().parents[3] / "infra" / "aws"
BUCKET = "arn:aws:s3:::alignops-registry/registry/"
ROLE = "arn:aws:iam::111122223333:role/alignops-{}"


def allowed(role: str, key: str) -> bool:
    """s3:PutObject on `key` by `role`: an Allow in its identity policy and no Deny in the bucket policy."""
    identity = json.loads((EXAMPLE / f"{role}-policy.json").read_text())["Statement"]
    bucket = json.loads((EXAMPLE / "bucket-policy.json").read_text())["Statement"]
    arn = BUCKET + key

    def matches(statement) -> bool:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        return any(fnmatchcase("s3:PutObject", a) for a in actions) and any(fnmatchcase(arn, r) for r in resources)

    def exempt(statement) -> bool:
        condition = statement.get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn")
        return condition == ROLE.format(role)

    denied = any(s["Effect"] == "Deny" and matches(s) and not exempt(s) and "Bool" not in s.get("Condition", {})
                 for s in bucket)
    return not denied and any(s["Effect"] == "Allow" and matches(s) for s in identity)


def written(registry: Registry, action) -> list[str]:
    before = set(registry.store.list_keys(""))
    action()
    return sorted(set(registry.store.list_keys("")) - before)


@pytest.fixture
def registry(tmp_path) -> Registry:
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "model.safetensors").write_bytes(b"w")
    return Registry.local(tmp_path / "registry")


def test_a_trainer_may_register_and_move_candidate_but_never_production(registry, tmp_path):
    gate = {"policy": "p", "passed": True, "rules": []}
    keys = written(registry, lambda: registry.register("m", tmp_path / "artifact", gate=gate, run_key="a" * 64))
    keys += written(registry, lambda: registry.set_alias("m", "candidate", 1))
    assert any("/versions/1/" in k for k in keys) and any("/runs/" in k for k in keys)
    assert [k for k in keys if not allowed("trainer", k)] == []
    promotion = written(registry, lambda: registry.promote("m", 1))
    production = [k for k in promotion if k.endswith("aliases/production.json")]
    assert production and not allowed("trainer", production[0])
    assert [k for k in promotion if not allowed("promoter", k)] == []
    assert not allowed("promoter", "models/m/versions/1/model.safetensors")  # it cannot change what it promotes
    assert not any(allowed("reader", k) for k in keys + promotion)

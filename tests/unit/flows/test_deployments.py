"""The deployment declarations, without a server: every flow has one, entrypoints load the same flow by
module path, parameters validate against the flows' typed configs, schedules and trigger are as documented.
(tests/integration/test_local_stack.py applies them to a real Prefect server.)"""

import importlib
from pathlib import Path

from prefect.flows import Flow, load_flow_from_entrypoint

import flows
from components.domains import DOMAINS
from flows.deployments import NIGHTLY, WEEKLY, deployments
from flows.finetune_on_change import WatchedDataset
from flows.steps.candidate import ALIAS_MOVED, PACKAGE_ON_MOVE


def by_name():
    return {d.name: d for d in deployments({"image": "registry.example/alignops:1"})}


def every_flow() -> set[str]:
    """The name of every Prefect flow defined in a module of `flows/`."""
    names = set()
    for path in Path(flows.__file__).parent.glob("*.py"):
        module = importlib.import_module(f"flows.{path.stem}")
        names |= {v.name for v in vars(module).values() if isinstance(v, Flow) and v.__module__ == module.__name__}
    return names


def test_every_flow_has_a_deployment_whose_module_entrypoint_loads_it():
    declared = by_name()
    assert {d.flow_name for d in declared.values()} == every_flow()
    assert {"lifecycle", "finetune", "rollback", "version_dataset", "import_checkpoint"} <= every_flow()
    for deployment in declared.values():
        module = deployment.entrypoint.rsplit(".", 1)[0]
        assert module.startswith("flows.") and ".py" not in deployment.entrypoint
        assert load_flow_from_entrypoint(deployment.entrypoint, use_placeholder_flow=False).name == \
            deployment.flow_name
        assert deployment.job_variables == {"image": "registry.example/alignops:1"}


def test_schedules_and_their_parameters():
    declared = by_name()
    scheduled = {name: [s.schedule.cron for s in d.schedules] for name, d in declared.items() if d.schedules}
    assert scheduled == {"weekly-production": [WEEKLY], **{f"nightly-{n}": [NIGHTLY] for n in DOMAINS}}
    assert declared["weekly-production"].parameters == {"model_ref": "general@production"}
    # a deployed upgrade re-embeds in a run of its own, which the deployment that name points to runs
    from flows.upgrade import REEMBED_DEPLOYMENT

    assert declared["upgrade"].parameters == {"background": True}
    assert f"{declared[REEMBED_DEPLOYMENT.split('/')[1]].flow_name}/{REEMBED_DEPLOYMENT.split('/')[1]}" == \
        REEMBED_DEPLOYMENT
    for name in DOMAINS:
        watched = WatchedDataset.model_validate(declared[f"nightly-{name}"].parameters["watched"])
        assert watched.domain == name and watched.base_model == "general@production"


def test_package_runs_when_production_moves():
    (trigger,) = by_name()["package"].triggers
    assert trigger.expect == {ALIAS_MOVED}
    assert trigger.match.model_dump() == {"alignops.alias": "production", PACKAGE_ON_MOVE: "true"}
    assert trigger.parameters == {"model_ref": "{{ event.payload.model }}:{{ event.payload.version }}"}
    assert all(not d.triggers for name, d in by_name().items() if name not in ("package", "continual-on-new-version"))


def test_a_new_version_of_the_watched_dataset_starts_a_continual_phase():
    from flows.continual import WatchedStream
    from flows.deployments import CONTINUAL_DATA
    from flows.version_dataset import DATASET_PATH, DATASET_VERSIONED

    deployment = by_name()["continual-on-new-version"]
    (trigger,) = deployment.triggers
    assert trigger.expect == {DATASET_VERSIONED} and trigger.match.model_dump() == {DATASET_PATH: CONTINUAL_DATA}
    stream = WatchedStream.model_validate(deployment.parameters["stream"])
    assert stream.dataset == CONTINUAL_DATA and stream.continue_from == "candidate"

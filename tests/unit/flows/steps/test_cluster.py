"""The --cluster option as a typed object: what it accepts, what it refuses before a flow starts, and which
runner it gives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.partitions.plan import IN_PROCESS
from flows.steps.cluster import ADDRESS_VARIABLE, Cluster, DaskPartitions


def test_in_process_by_default_a_cluster_where_named_or_set_in_the_environment(monkeypatch):
    monkeypatch.delenv(ADDRESS_VARIABLE, raising=False)
    assert Cluster.named(None).runner("data") is IN_PROCESS
    assert isinstance(Cluster.named("local:2").runner("data"), DaskPartitions)
    monkeypatch.setenv(ADDRESS_VARIABLE, "tcp://scheduler.internal:8786")
    assert Cluster.named(None).address == "tcp://scheduler.internal:8786"
    assert Cluster.named("").in_process  # named empty on the command line: here, whatever the environment says


@pytest.mark.parametrize("address", ["local:0", "local:", "local:two", "tcp://", "tcp://a b:1", "http://x:1",
                                     "0.0.0.0:8786", "tcp://x:1\n"])
def test_an_address_of_another_shape_is_refused(address):
    with pytest.raises(ValidationError):
        Cluster(address=address)


def test_a_remote_cluster_without_a_prefect_server_is_refused_before_a_worker_is_asked(monkeypatch):
    """Prefect's temporary server listens on this machine's loopback: remote workers could not report to it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.steps.cluster import api_for_workers

    assert Cluster(address="tcp://127.0.0.1:8786").on_this_machine and Cluster(address="local:2").on_this_machine
    with temporary_settings({PREFECT_API_URL: None}):
        with pytest.raises(ValueError, match="cannot reach Prefect's temporary server.*PREFECT_API_URL"):
            with api_for_workers(Cluster(address="tcp://scheduler.internal:8786")):
                pass
    with temporary_settings({PREFECT_API_URL: "http://prefect.internal:4200/api"}):
        with api_for_workers(Cluster(address="tcp://scheduler.internal:8786")):
            pass  # a server the workers reach: nothing to hand over

"""`alignops up | down | status | deploy`: the local stack, and deployments on a Prefect API."""

from __future__ import annotations

from typing import Annotated

import typer

from components.runtime import alignops_home
from flows.cli.errors import user_errors
from flows.steps.output import echo
from infra.stack import LOCAL_POOL


@user_errors
def up(prefect_port: int = 4200, s3_port: int = 9555, pool: str = LOCAL_POOL,
       host: Annotated[str, typer.Option(help="where Prefect's server and UI listen; beyond 127.0.0.1 only with "
                                              "PREFECT_SERVER_API_AUTH_STRING set")] = "127.0.0.1") -> None:
    """Start the local stack on 127.0.0.1 (Prefect server + UI, S3, a worker) and register the deployments."""
    from flows.steps.output import bold, console, line
    from infra.stack import up as start_stack

    with console.status("Starting the S3 server, the Prefect server and a worker; registering deployments"):
        stack = start_stack(alignops_home(), prefect_port, s3_port, pool, host)
    print_stack(stack)
    console.print(line("Prefect UI: ", bold(stack.ui_url or stack.prefect_api_url), "   (stop with `alignops down`)"))


@user_errors
def down() -> None:
    """Stop exactly what `alignops up` started in this state directory."""
    from infra.stack import down as stop_stack

    stopped = stop_stack(alignops_home())
    echo("\n".join(stopped) if stopped else "no stack was running")


@user_errors
def status() -> None:
    """What the local stack runs, and the deployments and scheduled runs its Prefect API holds."""
    from infra.stack import load_stack

    stack = load_stack(alignops_home())
    if stack is None:
        echo(f"no stack in {alignops_home()}: start one with `alignops up`")
        raise typer.Exit(1)
    print_stack(stack)


def print_stack(stack) -> None:
    from rich.text import Text

    from flows.steps.output import console, rich_table
    from infra.stack import describe_api, stack_dir

    console.print(rich_table(f"Stack {stack.id} in {stack.home}", ["service", "pid", "state", "address"],
                             [(s.name, s.pid, "running" if s.alive() else Text("stopped", style="red"), s.address or "")
                              for s in stack.services]))
    console.print(f"Registry {stack.registry}; DVC remote {stack.dvc_remote}; work pool {stack.pool}; "
                  f"logs in {stack_dir(stack.home) / 'logs'}")
    console.print(describe_api(stack))


@user_errors
def deploy(pool: str = LOCAL_POOL,
           image: Annotated[str | None, typer.Option(help="container image, for a Kubernetes pool")] = None) -> None:
    """Create or update every deployment on a work pool of the configured Prefect API (`PREFECT_API_URL`)."""
    import asyncio

    from flows.deployments import apply_deployments, ensure_process_pool, require_pool

    asyncio.run(require_pool(pool) if image else ensure_process_pool(pool))
    names = apply_deployments(pool, {"image": image} if image else None)
    echo(f"{len(names)} deployments on work pool {pool}: " + ", ".join(names))


@user_errors
def doctor() -> None:
    """What this machine and environment give alignops: Python, torch and package versions, the state
    directory and free disk, the stores and servers it would talk to and whether they answer. Exit 1 when
    something fails."""
    from components.runtime import Settings
    from flows.steps.output import console, rich_table
    from infra.doctor import examine

    findings = examine(Settings.from_env())
    console.print(rich_table("alignops doctor", ["check", "status", "finding"],
                             [(f.check, f.status, f.detail) for f in findings]))
    if any(f.status == "fail" for f in findings):
        raise typer.Exit(1)


COMMANDS = (up, down, status, deploy, doctor)

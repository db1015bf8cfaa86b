"""`alignops package | serve`: a registry version as a smoke-tested bento, and a bento served."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from flows.cli.errors import user_errors
from flows.steps.output import echo


@user_errors
def package(
    model_ref: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:VERSION")],
    gallery: Annotated[str | None, typer.Option(help="dataset (a directory or PATH@REV) whose images `search` "
                                                     "answers with")] = None,
    gallery_split: Annotated[str, typer.Option(help="the gallery dataset's split")] = "test",
    gallery_from: Annotated[str | None, typer.Option(help="a registered gallery (NAME@ALIAS or NAME:N, see "
                                                          "`alignops gallery`) to search instead, where the model "
                                                          "can query its embedding space")] = None,
    batching: Annotated[bool | None, typer.Option("--batching/--no-batching",
                                                  help="merge concurrent requests into one encoder call (default: on)")
                        ] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="items in one encoder call (default: 64)")] = None,
    max_latency_ms: Annotated[int | None, typer.Option(help="longest wait in the batch queue before a 503 "
                                                            "(default: 10000)")] = None,
    runtime: Annotated[str, typer.Option(help="torch, or onnx: the towers exported to ONNX now and run by "
                                              "onnxruntime on the CPU (same API, checks and batching)")] = "torch",
) -> None:
    """Run the `package` flow: build a bento from a registry version and smoke-test it."""
    from flows.cli.runs import dataset_at
    from flows.package import package as package_flow
    from registry.names import parse_ref
    from serving.options import ServingOptions

    parse_ref(model_ref), gallery_from and parse_ref(gallery_from)  # a bad reference fails before a flow starts
    given = {"batching": batching, "max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms,
             "runtime": runtime}
    serving = ServingOptions(**{name: value for name, value in given.items() if value is not None})
    bento_tag, result = package_flow(model_ref, dataset_at(gallery) if gallery else None, gallery_split, serving,
                                     gallery_from)
    echo(f"{bento_tag}: smoke test {'passed' if result.passed else 'FAILED'}")


@user_errors
def serve(bento: str, port: int = 3000, host: str = "127.0.0.1") -> None:
    """Serve a built bento (`bentoml serve`); stopping this command (Ctrl-C, SIGTERM) stops the server and its
    workers. Callers need a credential where API keys (`alignops keys api-key`) or OIDC are configured; beyond
    127.0.0.1 it refuses to serve without one."""
    import os

    from flows.cli.signals import run_as_group
    from flows.steps.platform import Platform
    from infra.stack import check_exposure
    from serving.auth import AuthConfig

    env = dict(os.environ)
    keys = Platform.from_env().api_keys
    if keys.exists():
        env.setdefault("ALIGNOPS_API_KEYS_FILE", str(keys))
    check_exposure(host, AuthConfig.from_env(env).enabled, "the bento", "create an API key with `alignops keys "
                   "api-key NAME`, or set ALIGNOPS_OIDC_JWKS_URL")
    raise typer.Exit(run_as_group([sys.executable, "-m", "bentoml", "serve", bento, "--host", host,
                                   "--port", str(port)], env=env))


COMMANDS = (package, serve)

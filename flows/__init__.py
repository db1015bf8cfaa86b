"""Prefect flows and the CLI: the top layer, wiring components, registry and serving together."""

"""Serving: the BentoML service, bento build from a registry version, smoke test of a built bento."""

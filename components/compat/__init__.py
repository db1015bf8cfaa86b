"""Compatible model upgrades: measuring whether a new model's queries work against an old model's gallery
(cross-model retrieval), and the light projection that maps a new embedding space into an old one."""

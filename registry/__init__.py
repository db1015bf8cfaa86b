"""Model registry: versions, aliases, lineage, audit log, promotion rules, stores."""

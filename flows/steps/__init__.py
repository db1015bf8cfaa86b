"""The steps the flows share, apart from the flows people trigger: the candidate pipeline (measure, judge,
register), training launchers and run names, datasets resolved where a run starts, compatibility with an
older embedding space, what people read (terminal output and Prefect artifacts), and the platform the
flows run on (registry, workspace, state directory)."""

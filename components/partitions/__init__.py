"""Data work cut into partitions, each turned into one stored part and the parts combined: the seam through which
the scan, fingerprints, curation scores and gallery embeddings run in this process or on a cluster."""

"""Per-layer arithmetic recomputed from a trace record (see the submodules)."""

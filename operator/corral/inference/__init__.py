"""InferenceService lifecycle: replicas, their placement and their size (pure; see docs/inference.md)."""

"""Post-deploy smoke checks of a deployed environment's public API (run by the pipeline)."""

"""Releases and experiments: the release gate, canary rollouts, A/B experiments, shadow and rollback."""

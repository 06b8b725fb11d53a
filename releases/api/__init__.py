"""REST API of releases and experiments: ``views`` (DRF views) and ``urls``."""

"""The model registry: versions with provenance, their artifacts, and the deployment aliases."""

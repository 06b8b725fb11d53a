"""The catalog: viewer and movie metadata (schema, import services, selectors)."""

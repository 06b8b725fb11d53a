"""Event intake: the platform's line parser, ingestion into the database, and the sources feeding it."""

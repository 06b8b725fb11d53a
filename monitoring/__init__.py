"""Telemetry, SLOs, online quality, data quality, drift, feedback loops, alerts.

Owns those services and their models, selectors, API, views, admin and tasks, plus incidents,
notifications (channels, webhooks) and the Prometheus metrics.

May import: portal and recommender, whose events, catalog and prediction log it reads (``sources``;
today also ``recommender.models`` inside functions, and some models looked up by name, where
recommender's selectors should serve). Not audits, not releases: releases, above it, reads its
online quality and sends through its notifications.
"""

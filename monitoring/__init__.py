"""Telemetry, SLOs, online quality, data quality, drift, feedback loops, alerts."""

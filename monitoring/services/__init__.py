"""Writes and analyses of the monitoring app, one module per area:

telemetry (rollups), slo (error budgets, burn rates), quality (online quality), data_quality,
drift, feedback (feedback loops), metrics (what alert rules watch), alerts (rule evaluation),
incidents, notifications, config (admin/API edits of SLOs, thresholds, channels).
"""

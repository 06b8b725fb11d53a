"""The audit checks: pure computations over data frames and settings, returning results and finding drafts.

Nothing in this package writes to the database; ``audits.services.runs`` persists what they return.
"""

"""Audit runs and findings: fairness (aequitas), security checks, sign-off.

Owns the pure checks (``checks``) and their runners, audit runs, findings with their waivers and
resolutions, sign-off, and the audits' pages, API, admin and tasks.

May import: portal and recommender, read only through ``sources``, the one module that reads other
apps; there it also reads monitoring's online quality by name (a sideways read: the two apps share
a floor). Not releases: the release gate, above, runs audits.
"""

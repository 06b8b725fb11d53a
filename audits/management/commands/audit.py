"""``python manage.py audit fairness|security [--version ID] [--fail-on SEVERITY]``: run one audit now.

Exit status: 0 when no finding of the run is at or above ``--fail-on`` (waived findings do not
count), 1 when one is, 2 when the audit itself failed. For CI.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from audits import selectors, services, sources
from audits.errors import UsherError
from audits.models import AuditFinding, AuditRun, Severity, severity_rank


class Command(BaseCommand):
    help = "Run a fairness or security audit now and exit non-zero on findings at or above a severity."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        # ``--version`` names the model version here, replacing Django's "print the version" option.
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=AuditRun.Kind.values)
        parser.add_argument("--version", type=int, default=None,
                            help="Model version id to audit (default: the live deployment).")
        parser.add_argument("--window-hours", type=float, default=None, help="Live window in hours up to now.")
        parser.add_argument("--fail-on", default="high", choices=[*Severity.values, "none"],
                            help="Exit 1 when a finding of the run is at or above this severity (default high).")
        parser.add_argument("--override", action="append", default=[], metavar="KEY=JSON",
                            help='Per-run setting, e.g. --override FAIRNESS_BAND=[0.9,1.1] (repeatable).')
        parser.add_argument("--json", action="store_true", help="Print the run's export as JSON.")

    def handle(self, *args, **options) -> None:
        overrides = {}
        for item in options["override"]:
            key, sep, raw = item.partition("=")
            if not sep:
                raise CommandError(f"--override needs KEY=JSON; got {item!r}")
            try:
                overrides[key.strip()] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CommandError(f"--override {key}: {raw!r} is not JSON ({exc})")
        version = None
        if options["version"] is not None:
            version = sources.model_version_get(version_id=options["version"])
            if version is None:
                raise CommandError(f"model version #{options['version']} does not exist")
        try:
            run = services.audit_run_create(kind=options["kind"], actor=None, model_version=version,
                                            window_hours=options["window_hours"], overrides=overrides,
                                            enqueue=False, system="manage.py audit")
        except UsherError as exc:
            raise CommandError(exc.message)
        run = services.audit_run_execute(run_id=run.pk, system="manage.py audit")
        if options["json"]:
            self.stdout.write(json.dumps(selectors.audit_run_export(run=run), indent=2))
        else:
            self.stdout.write(run.report or "")
        if run.status == AuditRun.Status.FAILED:
            self.stderr.write(f"audit #{run.pk} failed: {run.error.splitlines()[0] if run.error else ''}")
            sys.exit(2)
        if options["fail_on"] == "none":
            return
        threshold = severity_rank(options["fail_on"])
        blocking = [f for f in run.findings.all()
                    if f.severity_rank >= threshold and f.status != AuditFinding.Status.WAIVED]
        if blocking:
            self.stderr.write(f"audit #{run.pk}: {len(blocking)} finding(s) at or above {options['fail_on']}: "
                              + ", ".join(f"#{f.pk} [{f.severity}]" for f in blocking))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"audit #{run.pk}: no finding at or above {options['fail_on']}"))

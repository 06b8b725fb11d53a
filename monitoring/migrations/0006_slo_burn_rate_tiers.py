"""The seeded burn-rate alert rules carried the 30-day factors (14.4×, 6×, 1×) on 7-day SLOs. They now
name a tier (fast, slow, leak) whose windows and factor follow the SLO's period at every evaluation
(``monitoring.services.slo.slo_burn_tiers``); this stores the values for the SLO's current period and
renames them. Rules an operator has changed (other params, threshold or window) are left alone."""

from django.db import migrations

# (old name, slo, tier, old short window, old threshold, old window)
SEEDED = [
    ("availability: fast burn (1h/5m at 14.4x)", "availability", "fast", 5, 14.4, 60),
    ("availability: slow burn (6h/30m at 6x)", "availability", "slow", 30, 6.0, 360),
    ("availability: budget leak (3d/6h at 1x)", "availability", "leak", 360, 1.0, 4320),
    ("latency-p95: fast burn (1h/5m at 14.4x)", "latency-p95", "fast", 5, 14.4, 60),
    ("latency-p95: slow burn (6h/30m at 6x)", "latency-p95", "slow", 30, 6.0, 360),
    ("latency-p95: budget leak (3d/6h at 1x)", "latency-p95", "leak", 360, 1.0, 4320),
]
# A frozen copy of monitoring.services.slo.BURN_TIERS and burn_tier (migrations do not import app code).
TIERS = {"fast": (0.02, 60, "fast burn"), "slow": (0.05, 360, "slow burn"), "leak": (0.10, 4320, "budget leak")}
DESCRIPTIONS = {
    "fast": "{f:.0%} of the error budget in {w}: both the long and the short window burn faster than "
            "the factor, which follows the SLO's period (Google SRE workbook).",
    "slow": "{f:.0%} of the error budget in {w}; windows and factor follow the SLO's period.",
    "leak": "Burning {f:.0%} of the budget in {w}: faster than the budget lasts the period.",
}


def _tier(tier, period_days):
    fraction, long_minutes, _ = TIERS[tier]
    factor = round(fraction * period_days * 1440 / long_minutes, 6)
    if factor < 1:
        factor, long_minutes = 1.0, max(1, int(round(fraction * period_days * 1440)))
    return factor, long_minutes


def _duration(minutes):
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m" if minutes < 120 else f"{minutes / 60:.1f}h"


def forwards(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    SLO = apps.get_model("monitoring", "SLO")
    for old_name, slo_name, tier, short, threshold, window in SEEDED:
        rule = AlertRule.objects.filter(name=old_name).first()
        slo = SLO.objects.filter(name=slo_name).first()
        if rule is None or slo is None:
            continue
        if rule.params != {"slo": slo_name, "short_window_minutes": short} or rule.threshold != threshold \
                or rule.window_minutes != window:
            continue  # changed by someone: theirs to decide
        factor, long_minutes = _tier(tier, slo.window_days)
        new_name = f"{slo_name}: {TIERS[tier][2]} ({TIERS[tier][0]:.0%} of the budget)"
        if AlertRule.objects.filter(name=new_name).exists():
            continue
        rule.name = new_name
        rule.params = {"slo": slo_name, "tier": tier}
        rule.threshold = factor
        rule.window_minutes = long_minutes
        rule.description = DESCRIPTIONS[tier].format(f=TIERS[tier][0], w=_duration(long_minutes))
        rule.save()


def backwards(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for old_name, slo_name, tier, short, threshold, window in SEEDED:
        new_name = f"{slo_name}: {TIERS[tier][2]} ({TIERS[tier][0]:.0%} of the budget)"
        AlertRule.objects.filter(name=new_name, params={"slo": slo_name, "tier": tier}).update(
            name=old_name, params={"slo": slo_name, "short_window_minutes": short}, threshold=threshold,
            window_minutes=window)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0005_notificationchannel_secrets")]
    operations = [migrations.RunPython(forwards, backwards)]

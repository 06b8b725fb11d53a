"""The models of releases and experiments, taken over from the recommender app (state only: the
tables ``recommender_<model>`` were created by ``recommender.0006_releases`` and later migrations)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('portal', '0007_schedules_clear_headers_disable_unlisted'),
        ('recommender', '0012_model_promotion_reviews_to_promotion_requests'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='Experiment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=120, unique=True)),
                ('hypothesis', models.TextField(blank=True)),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('running', 'Running'), ('stopped', 'Stopped')], db_index=True, default='draft', max_length=10)),
                ('primary_metric', models.CharField(default='online_quality', max_length=40)),
                ('guardrails', models.JSONField(blank=True, default=dict, help_text='max_error_rate, max_p99_ms, max_fallback_rate.')),
                ('alpha', models.FloatField(default=0.05)),
                ('minimum_detectable_effect', models.FloatField(default=0.02, help_text='Absolute difference in success rate.')),
                ('power', models.FloatField(default=0.8)),
                ('salt', models.CharField(blank=True, help_text="The deployment's bucketing salt while it ran.", max_length=64)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('started_by_label', models.CharField(blank=True, max_length=150)),
                ('stopped_at', models.DateTimeField(blank=True, null=True)),
                ('stopped_by_label', models.CharField(blank=True, max_length=150)),
                ('stop_reason', models.TextField(blank=True)),
                ('decision', models.CharField(blank=True, max_length=40)),
                ('decision_reason', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'recommender_experiment',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='ExperimentSnapshot',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('computed_at', models.DateTimeField(db_index=True)),
                ('window_start', models.DateTimeField()),
                ('window_end', models.DateTimeField()),
                ('arms', models.JSONField(help_text='Per arm: successes, trials, rate, guardrail telemetry.')),
                ('srm', models.JSONField(default=dict)),
                ('ztest', models.JSONField(default=dict)),
                ('sequential', models.JSONField(default=dict)),
                ('sample_size', models.JSONField(default=dict)),
                ('decision', models.CharField(max_length=40)),
                ('decision_reason', models.TextField()),
                ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='snapshots', to='releases.experiment')),
            ],
            options={
                'db_table': 'recommender_experimentsnapshot',
                'ordering': ['experiment', 'computed_at'],
            },
        ),
        migrations.CreateModel(
            name='ExperimentVariant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(max_length=40)),
                ('allocation', models.PositiveSmallIntegerField(help_text='Percent of traffic.')),
                ('is_control', models.BooleanField(default=False)),
                ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='arms', to='releases.experiment')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='experiment_variants', to='recommender.modelversion')),
            ],
            options={
                'verbose_name': 'experiment arm',
                'db_table': 'recommender_experimentvariant',
                'ordering': ['experiment', '-is_control', 'id'],
            },
        ),
        migrations.CreateModel(
            name='PromotionRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('gate_pending', 'gate queued'), ('gate_running', 'gate running'), ('gate_failed', 'gate failed'), ('awaiting_review', 'awaiting review'), ('approved', 'approved'), ('rejected', 'rejected'), ('rolling_out', 'canary running'), ('released', 'released'), ('rolled_back', 'rolled back'), ('cancelled', 'cancelled')], db_index=True, default='gate_pending', max_length=20)),
                ('reason', models.TextField(help_text='Why this version should reach production.')),
                ('requested_label', models.CharField(help_text="User name, or 'system:<task>'.", max_length=150)),
                ('gate_attempt', models.PositiveIntegerField(default=0, help_text='How many times the gate has run.')),
                ('gate_passed', models.BooleanField(blank=True, null=True)),
                ('gate_finished_at', models.DateTimeField(blank=True, null=True)),
                ('decision_comment', models.TextField(blank=True)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('canary_steps', models.JSONField(blank=True, default=list, help_text='Percent steps for the canary, e.g. [5, 25, 50, 100].')),
                ('canary_interval_seconds', models.PositiveIntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('baseline_version', models.ForeignKey(blank=True, help_text='Production when the request was made (what the gate compares against).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='recommender.modelversion')),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('review', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='promotion', to='portal.reviewrequest')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='promotions', to='recommender.modelversion')),
            ],
            options={
                'db_table': 'recommender_promotionrequest',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='ReleaseGateCheck',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempt', models.PositiveIntegerField()),
                ('name', models.CharField(choices=[('offline_metrics', 'offline metrics vs production'), ('fairness_audit', 'fairness audit'), ('security_checks', 'security checks'), ('artifact_integrity', 'artifact integrity')], max_length=32)),
                ('outcome', models.CharField(choices=[('passed', 'Passed'), ('failed', 'Failed'), ('waived', 'passed (findings waived)'), ('error', 'Error')], max_length=10)),
                ('summary', models.CharField(max_length=500)),
                ('evidence', models.JSONField(blank=True, default=dict)),
                ('checked_at', models.DateTimeField(auto_now_add=True)),
                ('promotion', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='checks', to='releases.promotionrequest')),
            ],
            options={
                'db_table': 'recommender_releasegatecheck',
                'ordering': ['promotion', 'attempt', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Rollout',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('running', 'Running'), ('paused', 'Paused'), ('completed', 'Completed'), ('rolled_back', 'rolled back')], db_index=True, default='running', max_length=12)),
                ('steps', models.JSONField(help_text='Canary percent per step, increasing, ending at 100.')),
                ('interval_seconds', models.PositiveIntegerField()),
                ('step_index', models.IntegerField(default=0)),
                ('applied_percent', models.PositiveSmallIntegerField(default=0)),
                ('revision', models.PositiveIntegerField(default=0)),
                ('step_started_at', models.DateTimeField(blank=True, null=True)),
                ('next_check_at', models.DateTimeField(blank=True, db_index=True, null=True)),
                ('last_decision', models.JSONField(blank=True, default=dict)),
                ('started_by_label', models.CharField(max_length=150)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('finished_reason', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('baseline_version', models.ForeignKey(blank=True, help_text='Production when the canary started; a rollback returns to it.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='recommender.modelversion')),
                ('promotion', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='rollout', to='releases.promotionrequest')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='rollouts', to='recommender.modelversion')),
            ],
            options={
                'db_table': 'recommender_rollout',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='RolloutStep',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('revision', models.PositiveIntegerField(help_text='The rollout revision this transition produced.')),
                ('step_index', models.IntegerField()),
                ('from_percent', models.PositiveSmallIntegerField()),
                ('to_percent', models.PositiveSmallIntegerField()),
                ('outcome', models.CharField(choices=[('started', 'Started'), ('held', 'held (not enough data)'), ('advanced', 'Advanced'), ('completed', 'Completed'), ('rolled_back', 'rolled back'), ('paused', 'Paused'), ('resumed', 'Resumed')], max_length=12)),
                ('metrics', models.JSONField(blank=True, default=dict)),
                ('reason', models.TextField()),
                ('decided_label', models.CharField(max_length=150)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('rollout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='step_records', to='releases.rollout')),
            ],
            options={
                'db_table': 'recommender_rolloutstep',
                'ordering': ['rollout', 'revision'],
            },
        ),
        migrations.CreateModel(
            name='ShadowComparison',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('request_id', models.CharField(blank=True, db_index=True, max_length=64)),
                ('viewer_id', models.BigIntegerField()),
                ('production_items', models.JSONField()),
                ('shadow_items', models.JSONField()),
                ('overlap', models.FloatField(help_text='|P ∩ S| / k, k = 20.')),
                ('kendall_tau', models.FloatField(null=True)),
                ('spearman_rho', models.FloatField(null=True)),
                ('shadow_latency_ms', models.FloatField(null=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('production_version', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.modelversion')),
                ('shadow_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.modelversion')),
            ],
            options={
                'db_table': 'recommender_shadowcomparison',
            },
        ),
        migrations.CreateModel(
            name='ShadowReport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('window_end', models.DateTimeField()),
                ('requests', models.PositiveIntegerField()),
                ('mean_overlap', models.FloatField(null=True)),
                ('mean_kendall_tau', models.FloatField(null=True)),
                ('mean_spearman_rho', models.FloatField(null=True)),
                ('p50_shadow_latency_ms', models.FloatField(null=True)),
                ('overlap_histogram', models.JSONField(default=list)),
                ('created_by_label', models.CharField(max_length=150)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('production_version', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.modelversion')),
                ('shadow_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.modelversion')),
            ],
            options={
                'db_table': 'recommender_shadowreport',
                'ordering': ['-created_at'],
            },
        ),
        migrations.AddConstraint(
            model_name='experiment',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'running')), fields=('status',), name='experiment_one_running'),
        ),
        migrations.AddConstraint(
            model_name='experimentvariant',
            constraint=models.UniqueConstraint(fields=('experiment', 'name'), name='experiment_variant_unique_name'),
        ),
        migrations.AddConstraint(
            model_name='experimentvariant',
            constraint=models.CheckConstraint(condition=models.Q(('allocation__gte', 1), ('allocation__lte', 100)), name='experiment_variant_allocation_1_100'),
        ),
        migrations.AddConstraint(
            model_name='promotionrequest',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['gate_pending', 'gate_running', 'awaiting_review', 'approved', 'rolling_out'])), fields=('version',), name='promotion_one_open_per_version'),
        ),
        migrations.AddConstraint(
            model_name='releasegatecheck',
            constraint=models.UniqueConstraint(fields=('promotion', 'attempt', 'name'), name='gate_check_once_per_attempt'),
        ),
        migrations.AddConstraint(
            model_name='rollout',
            constraint=models.UniqueConstraint(condition=models.Q(('state__in', ['running', 'paused'])), fields=('state',), name='rollout_one_active'),
        ),
        migrations.AddConstraint(
            model_name='rolloutstep',
            constraint=models.UniqueConstraint(fields=('rollout', 'revision'), name='rollout_step_once_per_revision'),
        ),
        migrations.AddIndex(
            model_name='shadowcomparison',
            index=models.Index(fields=['shadow_version', 'created_at'], name='recommender_shadow__ef9325_idx'),
        ),
            ], database_operations=[]),
    ]

"""Releases and experiments moved to their own app (``releases``): their models leave the recommender's
state only; the tables stay where they are and ``releases.0001_initial`` takes them over by name."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('recommender', '0012_model_promotion_reviews_to_promotion_requests'),
        ('releases', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.RemoveField(
            model_name='experimentvariant',
            name='experiment',
        ),
        migrations.RemoveField(
            model_name='experimentsnapshot',
            name='experiment',
        ),
        migrations.RemoveField(
            model_name='experimentvariant',
            name='version',
        ),
        migrations.RemoveField(
            model_name='promotionrequest',
            name='baseline_version',
        ),
        migrations.RemoveField(
            model_name='promotionrequest',
            name='decided_by',
        ),
        migrations.RemoveField(
            model_name='promotionrequest',
            name='requested_by',
        ),
        migrations.RemoveField(
            model_name='promotionrequest',
            name='review',
        ),
        migrations.RemoveField(
            model_name='promotionrequest',
            name='version',
        ),
        migrations.RemoveField(
            model_name='releasegatecheck',
            name='promotion',
        ),
        migrations.RemoveField(
            model_name='rollout',
            name='promotion',
        ),
        migrations.RemoveField(
            model_name='rollout',
            name='baseline_version',
        ),
        migrations.RemoveField(
            model_name='rollout',
            name='version',
        ),
        migrations.RemoveField(
            model_name='rolloutstep',
            name='rollout',
        ),
        migrations.RemoveField(
            model_name='rolloutstep',
            name='decided_by',
        ),
        migrations.RemoveField(
            model_name='shadowcomparison',
            name='production_version',
        ),
        migrations.RemoveField(
            model_name='shadowcomparison',
            name='shadow_version',
        ),
        migrations.RemoveField(
            model_name='shadowreport',
            name='production_version',
        ),
        migrations.RemoveField(
            model_name='shadowreport',
            name='shadow_version',
        ),
        migrations.DeleteModel(
            name='Experiment',
        ),
        migrations.DeleteModel(
            name='ExperimentSnapshot',
        ),
        migrations.DeleteModel(
            name='ExperimentVariant',
        ),
        migrations.DeleteModel(
            name='ReleaseGateCheck',
        ),
        migrations.DeleteModel(
            name='PromotionRequest',
        ),
        migrations.DeleteModel(
            name='Rollout',
        ),
        migrations.DeleteModel(
            name='RolloutStep',
        ),
        migrations.DeleteModel(
            name='ShadowComparison',
        ),
        migrations.DeleteModel(
            name='ShadowReport',
        ),
            ], database_operations=[]),
    ]

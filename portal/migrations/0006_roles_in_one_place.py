"""A role lives in one place, the user's group: a superuser without a role group joins ``admin``
(the power it held), then ``is_staff`` and ``is_superuser`` follow the admin role for everyone."""

from django.conf import settings
from django.db import migrations

ROLE_NAMES = ("viewer", "data_scientist", "operator", "reviewer", "admin")


def roles_in_one_place(apps, schema_editor) -> None:
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Group = apps.get_model("auth", "Group")
    admin, _ = Group.objects.get_or_create(name="admin")
    for user in User.objects.prefetch_related("groups"):
        roles = {g.name for g in user.groups.all()} & set(ROLE_NAMES)
        if user.is_superuser and not roles:
            user.groups.add(admin)
            roles = {"admin"}
        is_admin = "admin" in roles
        if user.is_staff != is_admin or user.is_superuser != is_admin:
            User.objects.filter(pk=user.pk).update(is_staff=is_admin, is_superuser=is_admin)


class Migration(migrations.Migration):
    dependencies = [("portal", "0005_hash_authtoken_keys"), ("portal", "0002_roles"),
                    ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(roles_in_one_place, migrations.RunPython.noop)]

"""Users and roles: `create_user` generates a password and prints it once; no fixed default
password exists; the role groups and their permissions come from migrations."""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from portal.models import ActivityLogEntry
from portal.roles import ROLE_NAMES

pytestmark = pytest.mark.django_db
BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD_LINE = re.compile(r"password \(shown once\): (\S+)")


def _create(name: str, role: str) -> str:
    out = io.StringIO()
    call_command("create_user", name, role=role, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_create_user_prints_a_generated_password_once(role):
    # When a user is created
    output = _create(f"alice_{role}", role)
    # Then one line carries a strong generated password that logs the user in
    passwords = PASSWORD_LINE.findall(output)
    assert len(passwords) == 1
    password = passwords[0]
    assert len(password) >= 20
    user = authenticate(username=f"alice_{role}", password=password)
    assert user is not None
    assert list(user.groups.values_list("name", flat=True)) == [role]
    # And staff and superuser follow the role: the admin is for admins
    assert user.is_staff is (role == "admin") and user.is_superuser is (role == "admin")
    # And the password is stored hashed, never in clear
    assert password not in user.password
    entry = ActivityLogEntry.objects.get(action="user.created")
    assert entry.actor_label == "system:create_user" and entry.data["role"] == role
    assert password not in str(entry.data)


def test_each_user_gets_a_different_password():
    first = PASSWORD_LINE.search(_create("u1", "viewer")).group(1)
    second = PASSWORD_LINE.search(_create("u2", "viewer")).group(1)
    assert first != second


def test_create_user_refuses_a_duplicate_and_an_unknown_role():
    _create("bob", "operator")
    with pytest.raises(CommandError, match="user 'bob' already exists"):
        _create("bob", "operator")
    with pytest.raises(CommandError, match="invalid choice: 'superhero'"):
        _create("carol", "superhero")


def test_seed_demo_users_prints_passwords_on_the_first_run_only():
    first = io.StringIO()
    call_command("seed_demo_users", stdout=first)
    assert len(PASSWORD_LINE.findall(first.getvalue())) == len(ROLE_NAMES)
    second = io.StringIO()
    call_command("seed_demo_users", stdout=second)
    assert PASSWORD_LINE.findall(second.getvalue()) == []
    assert get_user_model().objects.filter(username__startswith="demo_").count() == len(ROLE_NAMES)


def test_the_demo_rollout_benchmark_signs_in_with_the_passwords_make_run_printed(tmp_path):
    # benchmarks/demo_rollout.py reads the demo users' passwords from `make run`'s saved output.
    spec = importlib.util.spec_from_file_location("demo_rollout", BASE_DIR / "benchmarks" / "demo_rollout.py")
    demo_rollout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_rollout)
    out = io.StringIO()
    call_command("seed_demo_users", stdout=out)
    log = tmp_path / "run.log"
    log.write_text(f"make run\n{out.getvalue()}bootstrap: done\n")

    found = demo_rollout.passwords(log=str(log))

    assert set(found) == {f"demo_{role}" for role in ROLE_NAMES}
    for name in ("demo_data_scientist", "demo_reviewer"):
        assert authenticate(username=name, password=found[name]) is not None, name


def test_admin_creates_users_through_the_service(users, web_client_for):
    client = web_client_for("admin")
    response = client.post("/portal/auth/user/add/", {"username": "dave", "email": "d@example.com", "role": "reviewer"},
                           follow=True)
    assert response.status_code == 200
    shown = PASSWORD_LINE.findall(response.content.decode())
    assert len(shown) == 1
    dave = authenticate(username="dave", password=shown[0])
    assert dave is not None and dave.groups.filter(name="reviewer").exists()
    assert ActivityLogEntry.objects.filter(action="user.created", actor=users["admin"]).exists()


def test_no_fixed_default_password_in_the_repository():
    # Every tracked file: no password= with a literal value, except generated or test-random ones
    try:
        files = subprocess.run(["git", "ls-files"], cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        skip = {".venv", "var", ".git", "node_modules", "__pycache__"}
        files = [str(p.relative_to(BASE_DIR)) for p in BASE_DIR.rglob("*") if not skip & set(p.parts)]
    literal = re.compile(r"""(?i)(password|passwd)\s*[=:]\s*["'][^"'{}\s]{4,}["']""")
    offenders = []
    for name in files:
        path = BASE_DIR / name
        if not path.is_file() or path.suffix not in {".py", ".md", ".txt", ".toml", ".yml", ".yaml", ".json", ".env",
                                                    ".example", ".cfg", ".ini", ".html", ""}:
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if literal.search(line) and "test" not in name:
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_roles_are_groups_with_exactly_the_tables_permissions():
    from django.contrib.auth.models import Permission

    from portal.roles import ADMIN_MODELS, sync_role_permissions

    sync_role_permissions()
    perms = {g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.select_related("content_type")}
             for g in Group.objects.all()}
    assert set(ROLE_NAMES) <= set(perms)
    # A viewer, a data scientist and a reviewer hold no admin permission at all
    assert perms["viewer"] == perms["data_scientist"] == perms["reviewer"] == set()
    # An operator holds exactly the config models and schedules of the table, and never deletes
    assert "monitoring.change_alertrule" in perms["operator"] and "monitoring.add_slo" in perms["operator"]
    assert "recommender.view_movie" in perms["operator"] and "recommender.change_movie" not in perms["operator"]
    assert not {p for p in perms["operator"] if ".delete_" in p}
    expected = {f"{label.split('.')[0]}.{op}_{label.split('.')[1]}" for label, ops in ADMIN_MODELS["operator"].items()
                for op in ops}
    assert perms["operator"] == expected
    # Users, groups, tokens, task results and the log's head: admin only
    for codename in ("auth.view_user", "auth.view_group", "portal.view_apitoken", "portal.delete_apitoken",
                     "django_celery_results.view_taskresult", "portal.view_activityloghead"):
        assert codename in perms["admin"]
        assert all(codename not in perms[role] for role in ROLE_NAMES if role != "admin")
    for role in ROLE_NAMES:  # the activity log is append-only for everyone
        assert not {"portal.add_activitylogentry", "portal.change_activitylogentry",
                    "portal.delete_activitylogentry"} & perms[role]
    # And DRF's clear-text token models are gone with their app
    assert not Permission.objects.filter(content_type__app_label="authtoken", group__isnull=False).exists()


def test_every_model_named_in_the_table_exists():
    from django.apps import apps

    from portal.roles import ADMIN_MODELS

    for role, table in ADMIN_MODELS.items():
        if table == "*":
            continue
        for label, ops in table.items():
            assert apps.get_model(label), label
            assert set(ops) <= {"view", "add", "change", "delete"}, (role, label)


def test_sync_sets_exactly_the_table_and_clears_per_user_grants(users):
    from django.contrib.auth.models import Permission

    from portal.roles import sync_role_permissions

    # Given a permission granted by hand to a group and to a user
    token_perm = Permission.objects.get(codename="view_apitoken")
    Group.objects.get(name="viewer").permissions.add(token_perm)
    users["operator"].user_permissions.add(token_perm)
    # When the roles are synced (as after every migrate)
    sync_role_permissions()
    # Then neither grant is left
    assert not Group.objects.get(name="viewer").permissions.exists()
    assert not get_user_model().objects.get(pk=users["operator"].pk).user_permissions.exists()

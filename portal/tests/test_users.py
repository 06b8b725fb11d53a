"""Users and roles: `create_user` generates a password and prints it once; no fixed default
password exists; the role groups and their permissions come from migrations."""

from __future__ import annotations

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
    assert user is not None and user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == [role]
    assert user.is_superuser is (role == "admin")
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


def test_roles_are_groups_with_their_permissions():
    from portal.roles import sync_role_permissions

    sync_role_permissions()
    perms = {g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    assert set(ROLE_NAMES) <= set(perms)
    assert perms["viewer"] and all(p.startswith("view_") for p in perms["viewer"])
    assert "change_reviewrequest" in perms["reviewer"] and "change_reviewrequest" not in perms["operator"]
    assert "change_periodictask" in perms["operator"]
    for role in ROLE_NAMES:  # the activity log is append-only for everyone
        assert not {"add_activitylogentry", "change_activitylogentry", "delete_activitylogentry"} & perms[role]
    assert {"delete_" + p[5:] for p in perms["viewer"]} & perms["operator"] == set()  # non-admins never delete

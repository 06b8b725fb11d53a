"""Issue #15's everyday path measured live, by clicks alone, against a running ``make run``.

    python benchmarks/demo_rollout.py --passwords-from run.log [--url http://127.0.0.1:8000]
        [--algorithm svdpp|svd] [--snapshot new|latest] [--timeout-minutes 40] [--shots DIR]

A real headless chromium (Debian's /usr/bin/chromium, through Playwright) does what two people do in
the portal, and nothing else acts: the demo's data scientist takes a snapshot of everything so far
(or picks the latest one), trains a new algorithm on it from the training form, waits for the run on
its page, asks for its promotion from the Releases page with the default canary plan and logs out;
the demo's reviewer approves it from the review inbox. From then on the script only reads the
rollout page (a reload every ``--poll-seconds``) until the rollout completes or rolls back, and
prints a timeline: minutes from the approval to each step (5 → 25 → 50 → 100 %), the evidence the
page shows, the lists per minute it reports, and a summary line. Screenshots go to ``--shots``.

Exit code 0 only if the rollout completed, with every gate check passed (none waived) and no step
decided by anyone but the system. The browser may reach only ``--url``'s own origin, which must be
loopback; every other request is refused (and counted).

Passwords: ``make run`` prints each demo user's password once (``seed_demo_users``); keep its output
(``make run | tee run.log``) and pass it with ``--passwords-from``, or set
``USHER_DEMO_DATA_SCIENTIST_PASSWORD`` and ``USHER_DEMO_REVIEWER_PASSWORD``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

PASSWORD_LINE = re.compile(r"created (\S+) \((\w+)\); password \(shown once\): (\S+)")
ACTIVE_STATES = ("running", "paused")
STEP_OUTCOMES = ("started", "advanced", "completed", "rolled_back")


class DemoError(Exception):
    """The path stopped: what the page said instead of what the next click needed."""


def loopback_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise argparse.ArgumentTypeError(f"must be an http(s) URL on loopback (127.0.0.1, ::1, localhost), got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def passwords(*, log: str | None) -> dict[str, str]:
    """Username → password from ``make run``'s output, then from the environment."""
    found = {}
    if log:
        try:
            text = Path(log).read_text(errors="replace")
        except OSError as exc:
            raise SystemExit(f"--passwords-from: cannot read {log}: {exc.strerror}") from None
        found = {name: password for name, _, password in PASSWORD_LINE.findall(text)}
    for role in ("data_scientist", "reviewer"):
        value = os.environ.get(f"USHER_DEMO_{role.upper()}_PASSWORD")
        if value:
            found[f"demo_{role}"] = value
    return found


def wait_ready(base: str, *, minutes: float) -> float:
    """Seconds until ``/readyz`` answers 200 (``make run`` bootstraps the world before it serves)."""
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:  # noqa: S310 (loopback only)
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - start > minutes * 60:
            raise DemoError(f"{base}/readyz did not answer 200 within {minutes:g} minutes: is `make run` up?")
        time.sleep(3)


class Portal:
    """One browser page on the portal, with the few moves the path needs."""

    def __init__(self, page, *, base: str, shots: Path):
        self.page = page
        self.base = base
        self.shots = shots
        self.shot_count = 0

    def shot(self, name: str) -> None:
        self.shot_count += 1
        self.page.screenshot(path=str(self.shots / f"{self.shot_count:02d}-{name}.png"), full_page=True)

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("load")

    def text(self, selector: str, default: str = "") -> str:
        locator = self.page.locator(selector)
        return " ".join(locator.first.inner_text().split()) if locator.count() else default

    def login(self, username: str, password: str) -> None:
        self.open("/portal/login/?next=/portal/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("load")
        if "/portal/login/" in self.page.url:
            self.shot(f"login-refused-{username}")
            raise DemoError(f"login as {username} was refused: {self.text('.errornote, form', '(no message)')[:200]}")

    def logout(self, username: str) -> None:
        """Unfold's account menu (the user's name at the foot of the sidebar) → "Log out" (a POST form)."""
        self.open("/portal/")
        button = self.page.get_by_role("button", name=re.compile(r"^Log out"))
        if not button.is_visible():
            self.page.get_by_text(username, exact=True).first.click()
        button.click()
        self.page.wait_for_load_state("load")
        self.open("/portal/")
        if "/portal/login/" not in self.page.url:
            raise DemoError("logging out did not end the session (the portal still answers without a login)")


def minutes_since(t0: float) -> float:
    return (time.monotonic() - t0) / 60


def row_texts(portal: Portal, selector: str) -> list[list[str]]:
    return portal.page.eval_on_selector_all(
        f"{selector} > tbody > tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )


def take_snapshot(portal: Portal, *, mode: str) -> str:
    portal.open("/portal/training/snapshots/")
    if mode == "latest":
        rows = [r for r in row_texts(portal, '[data-testid="snapshots"]') if len(r) > 1 and r[0].isdigit()]
        if not rows:
            raise DemoError("--snapshot latest: the snapshots page lists none")
        latest = max(rows, key=lambda r: int(r[0]))
        print(f"snapshot: the latest, #{latest[0]} {latest[1]!r} ({latest[3]} ratings, {latest[4]} viewers)")
        return latest[0]
    form = portal.page.locator('[data-testid="snapshot-form"]')
    if not form.count():
        raise DemoError("the snapshots page has no 'Take a snapshot' form for this user")
    name = f"demo rollout {datetime.now(tz=UTC):%Y-%m-%d %H:%M}"
    form.locator("input[name=name]").fill(name)
    form.get_by_role("button", name="Take snapshot").click()
    portal.page.wait_for_load_state("load")
    match = re.search(r"/training/snapshots/(\d+)/", portal.page.url)
    if not match:
        portal.shot("snapshot-refused")
        raise DemoError(f"the snapshot was not taken: {portal.text('form', '(no message)')[:300]}")
    portal.shot("snapshot")
    print(f"snapshot: took #{match.group(1)} {name!r}")
    return match.group(1)


def train(portal: Portal, *, snapshot: str, algorithm: str, hyperparameters: str, minutes: float) -> dict:
    portal.open("/portal/training/runs/")
    form = portal.page.locator('[data-testid="train-form"]')
    offered = form.locator("input[name=algorithm]").evaluate_all("els => els.map(e => e.value)")
    if algorithm not in offered:
        raise DemoError(f"--algorithm {algorithm}: the training form offers {', '.join(offered)}")
    form.locator("select[name=snapshot]").select_option(snapshot)
    form.locator(f"input[name=algorithm][value={algorithm}]").check()
    if hyperparameters:
        form.locator("textarea[name=hyperparameters]").fill(hyperparameters)
    form.get_by_role("button", name="Queue runs").click()
    portal.page.wait_for_load_state("load")
    runs = [
        r
        for r in row_texts(portal, '[data-testid="runs"]')
        if len(r) > 2 and r[0].isdigit() and r[1] == algorithm and r[2] == f"#{snapshot}"
    ]
    if not runs:
        portal.shot("train-refused")
        raise DemoError(f"no {algorithm} run was queued: {portal.text('[data-testid=train-form]')[:300]}")
    run = max(int(r[0]) for r in runs)
    portal.page.get_by_role("link", name=str(run), exact=True).first.click()
    portal.page.wait_for_load_state("load")
    start = time.monotonic()
    status = ""
    while True:
        status = portal.page.locator("[data-run-progress]").first.get_attribute("data-status") or ""
        if status in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() - start > minutes * 60:
            portal.shot("train-timeout")
            raise DemoError(f"run #{run} still {status} after {minutes:g} minutes")
        time.sleep(5)
        portal.page.reload()
        portal.page.wait_for_load_state("load")
    portal.shot("trained")
    if status != "succeeded":
        raise DemoError(f"run #{run} {status}: {portal.text('[data-testid=log]')[-400:]}")
    version_link = portal.page.locator("a[href*='/registry/versions/']").first
    version_pk = re.search(r"/registry/versions/(\d+)/", version_link.get_attribute("href")).group(1)
    metrics = portal.text('[data-testid="metrics"]')
    print(
        f"training: run #{run} {algorithm} succeeded in {time.monotonic() - start:.0f} s (page polled); "
        f"version {version_link.inner_text().strip()}; {metrics[:160]}"
    )
    return {"run": run, "version_pk": version_pk, "version": version_link.inner_text().strip()}


def request_promotion(portal: Portal, *, version_pk: str, algorithm: str, minutes: float) -> dict:
    portal.open("/portal/releases/")
    form = portal.page.locator('[data-testid="request-promotion"]')
    if not form.count():
        raise DemoError("the Releases page has no 'Request a promotion' form for this user")
    form.locator("select[name=version]").select_option(version_pk)
    form.locator("textarea[name=reason]").fill(f"{algorithm} learns each viewer's taste; production is older")
    form.get_by_role("button", name="Request promotion").click()
    portal.page.wait_for_load_state("load")
    match = re.search(r"/releases/promotions/(\d+)/", portal.page.url)
    if not match:
        portal.shot("promotion-refused")
        raise DemoError(f"the promotion was not requested: {portal.text('[data-testid=request-promotion]')[:300]}")
    start = time.monotonic()
    while True:
        status = portal.text('[data-testid="promotion-status"]')
        if status not in ("gate_pending", "gate_running"):
            break
        if time.monotonic() - start > minutes * 60:
            raise DemoError(f"the release gate was still {status} after {minutes:g} minutes")
        time.sleep(5)
        portal.page.reload()
        portal.page.wait_for_load_state("load")
    portal.shot("gate")
    checks = [r[:3] for r in row_texts(portal, '[data-testid="gate-checks"]') if len(r) >= 3]
    plan = re.search(r"Canary plan\s+(.+?\d+ s)", portal.text("dl"))
    print(
        f"promotion #{match.group(1)} (canary plan {plan.group(1) if plan else '?'}): gate "
        f"{time.monotonic() - start:.0f} s (page polled), status {status}"
    )
    for name, outcome, summary in checks:
        print(f"  gate {name}: {outcome} — {summary[:150]}")
    if status != "awaiting_review":
        raise DemoError(f"promotion #{match.group(1)} is {status}, not awaiting review")
    waived = [c[0] for c in checks if c[1] != "passed"]
    return {"pk": match.group(1), "waived": waived, "checks": len(checks)}


def approve(portal: Portal, *, version: str) -> tuple[float, datetime]:
    """Approves the promotion from the reviewer's inbox; returns the moment of the click."""
    portal.open("/portal/inbox/")
    rows = portal.page.locator('[data-testid="inbox-pending"] tbody tr')
    row = rows.filter(has_text=version)
    if not row.count():
        row = rows.filter(has_text=re.compile("Promot"))
    if not row.count():
        portal.shot("inbox")
        raise DemoError(f"the reviewer's inbox shows no promotion: {portal.text('[data-testid=inbox-pending]')[:300]}")
    print(f"inbox: {' '.join(row.first.inner_text().split())[:160]}")
    row.first.locator("a").first.click()
    portal.page.wait_for_load_state("load")
    form = portal.page.locator('[data-testid="decide-form"]')
    if not form.count():
        raise DemoError(f"the review page has no decision form: {portal.text('main', '')[:300]}")
    form.locator("textarea[name=comment]").fill("better offline, gate clean")
    clicked = time.monotonic(), datetime.now(tz=UTC)
    form.locator("button[value=approve]").click()
    portal.page.wait_for_load_state("load")
    status = portal.text('[data-testid="review-status"]')
    if status != "approved":
        portal.shot("approve-refused")
        raise DemoError(f"the review is {status!r} after Approve: {portal.text('main', '')[:300]}")
    return clicked


def open_rollout(portal: Portal, *, promotion: str) -> str:
    """From the review page: its target (the promotion), then the promotion's rollout link."""
    portal.page.locator('[data-testid="review-target"] a').first.click()
    portal.page.wait_for_load_state("load")
    link = portal.page.locator("a[href*='/releases/rollouts/']").first
    if not link.count():
        raise DemoError(
            f"promotion #{promotion} shows no rollout after the approval: "
            f"{portal.text('[data-testid=promotion-status]')}"
        )
    link.click()
    portal.page.wait_for_load_state("load")
    return portal.page.url


def step_minutes(when: str, approved_at: datetime) -> float:
    """The steps table's "m-d H:i:s" (UTC), in minutes after the approval (to the second, as the table)."""
    at = datetime.strptime(f"{approved_at.year}-{when}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return (at - approved_at.replace(microsecond=0)).total_seconds() / 60


def watch(portal: Portal, *, approved_at: datetime, t0: float, minutes: float, poll: float) -> dict:
    """Only reads the rollout page: a reload every ``poll`` seconds until the rollout ends."""
    seen: set[str] = set()
    steps: list[tuple[float, str, str, str]] = []
    rates: list[float] = []
    loads: list[float] = []
    last_evidence = None
    state = ""
    while True:
        loads.append(os.getloadavg()[0])
        state = portal.text('[data-testid="rollout-state"]')
        evidence = portal.text('[data-testid="evidence"]')
        rate = re.search(r"\(([\d.]+) lists/min", evidence)
        if rate:
            rates.append(float(rate.group(1)))
        new_step = False
        for row in row_texts(portal, '[data-testid="steps"]'):
            if len(row) < 8 or row[0] in seen or row[2] not in STEP_OUTCOMES:
                continue
            seen.add(row[0])
            new_step = True
            at = step_minutes(row[1], approved_at)
            steps.append((at, row[2], row[3], row[7]))
            print(f"{at:6.1f} min  {row[2]:<11} {row[3]:<10} quality {row[4] or '—'}  {row[7][:220]}")
        if evidence and evidence != last_evidence:
            print(f"{minutes_since(t0):6.1f} min  [page] {state}: {evidence[:260]}")
            last_evidence = evidence
        if new_step:
            portal.shot(f"rollout-{len(steps)}")
        if not state.startswith(ACTIVE_STATES):
            break
        if minutes_since(t0) > minutes:
            break
        time.sleep(poll)
        portal.page.reload()
        portal.page.wait_for_load_state("load")
    portal.shot("rollout-end")
    return {
        "state": state.split()[0] if state else "",
        "steps": steps,
        "rates": rates,
        "loads": loads,
        "decided": [s[3].split(" — ")[0] for s in steps if s[1] != "started"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", type=loopback_url, default="http://127.0.0.1:8000", help="a running `make run` (loopback only)"
    )
    parser.add_argument("--algorithm", default="svdpp", help="what the training form offers (default svdpp)")
    parser.add_argument("--hyperparameters", default="", help="name=value pairs for the form (default: none)")
    parser.add_argument(
        "--snapshot",
        choices=("new", "latest"),
        default="new",
        help="take a snapshot of everything so far (new) or train on the latest one",
    )
    parser.add_argument("--passwords-from", help="make run's output, with the passwords seed_demo_users printed")
    parser.add_argument("--data-scientist", default="demo_data_scientist")
    parser.add_argument("--reviewer", default="demo_reviewer")
    parser.add_argument("--timeout-minutes", type=float, default=40, help="from the approval to the rollout's end")
    parser.add_argument("--train-minutes", type=float, default=15, help="bound on the training run")
    parser.add_argument("--gate-minutes", type=float, default=15, help="bound on the release gate")
    parser.add_argument("--poll-seconds", type=float, default=30, help="rollout page reload interval")
    parser.add_argument("--shots", default="var/demo-rollout", help="folder for the screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    known = passwords(log=args.passwords_from)
    missing = [u for u in (args.data_scientist, args.reviewer) if u not in known]
    if missing:
        parser.error(
            f"no password for {', '.join(missing)}: pass --passwords-from <make run's output> or set "
            f"USHER_DEMO_DATA_SCIENTIST_PASSWORD / USHER_DEMO_REVIEWER_PASSWORD"
        )
    if not Path(args.chromium).exists():
        parser.error(f"--chromium: {args.chromium} does not exist (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    print(f"demo_rollout: {args.url}, {args.algorithm}, on {machine()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    refused: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)

        def only_the_portal(route):
            if route.request.url.startswith(args.url + "/") or route.request.url == args.url:
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        context.route("**/*", only_the_portal)
        portal = Portal(context.new_page(), base=args.url, shots=shots)
        try:
            print(f"ready after {wait_ready(args.url, minutes=10):.0f} s")
            portal.login(args.data_scientist, known[args.data_scientist])
            snapshot = take_snapshot(portal, mode=args.snapshot)
            run = train(
                portal,
                snapshot=snapshot,
                algorithm=args.algorithm,
                hyperparameters=args.hyperparameters,
                minutes=args.train_minutes,
            )
            promotion = request_promotion(
                portal, version_pk=run["version_pk"], algorithm=args.algorithm, minutes=args.gate_minutes
            )
            portal.logout(args.data_scientist)
            portal.login(args.reviewer, known[args.reviewer])
            t0, approved_at = approve(portal, version=run["version"])
            portal.shot("approved")
            print(f"approved at {approved_at:%H:%M:%S} UTC by {args.reviewer}; from now on the script only reads")
            rollout_url = open_rollout(portal, promotion=promotion["pk"])
            print(f"watching {rollout_url} every {args.poll_seconds:g} s, at most {args.timeout_minutes:g} minutes")
            result = watch(portal, approved_at=approved_at, t0=t0, minutes=args.timeout_minutes, poll=args.poll_seconds)
        except DemoError as exc:
            print(f"demo_rollout: FAILED: {exc}")
            return 2
        finally:
            browser.close()

    steps = result["steps"]
    path = " → ".join(f"{s[2].split('→')[-1].strip()} at {s[0]:.1f}" for s in steps)
    by_system = all(d.startswith("system:") for d in result["decided"])
    rates = result["rates"]
    rate = f"{min(rates):.0f}–{max(rates):.0f} lists/min" if rates else "no rate shown"
    loads = result["loads"]
    print(
        f"load average (1 min) while watching: {min(loads):.2f}–{max(loads):.2f}; "
        f"requests outside {args.url} refused: {len(refused)}"
    )
    print(
        f"demo_rollout: {result['state']} — {args.algorithm} ({run['version']}), gate {promotion['checks']} checks "
        f"{'all passed, no waiver' if not promotion['waived'] else 'NOT all passed: ' + ', '.join(promotion['waived'])}; "
        f"minutes from approval: {path}; decided by {'the system alone' if by_system else ', '.join(result['decided'])}; "
        f"{rate}"
    )
    ok = result["state"] == "completed" and not promotion["waived"] and by_system
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Artifact integrity: recompute the sha256 of every stored artifact and compare with the registry.

A model version's artifact is a folder whose sha256 is that of its ``manifest.json``; the manifest
lists the sha256 of every array file (docs/artifacts.md). A dataset snapshot lists the sha256 of
each exported file's uncompressed content (its files are gzip). Every file is re-hashed; a missing folder or file, an extra file, or a hash
that differs is a finding naming the file and both hashes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audits.checks.base import CheckOutcome, FindingDraft

MANIFEST_FILE = "manifest.json"


@dataclass
class ArtifactRef:
    """One stored artifact to verify: a model version's folder, or a snapshot's files."""

    kind: str  # model_version | snapshot
    ident: int
    label: str
    directory: Path | None
    manifest_sha256: str = ""  # model versions
    files: dict[str, str] = field(default_factory=dict)  # snapshots: file name -> sha256
    problem: str = ""  # set when the folder could not even be located


def file_sha256(path: Path, *, uncompressed: bool = False) -> str:
    """sha256 of a file's bytes, or of its gunzipped content (snapshots record the uncompressed hash)."""
    digest = hashlib.sha256()
    opener = gzip.open if uncompressed else open
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_model(ref: ArtifactRef) -> tuple[list[dict[str, Any]], int, int]:
    """(problems, files checked, bytes hashed)."""
    folder = ref.directory
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        return [{"file": MANIFEST_FILE, "problem": "missing"}], 0, 0
    data = manifest_path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    problems: list[dict[str, Any]] = []
    checked, hashed = 1, len(data)
    if found != ref.manifest_sha256:
        problems.append({"file": MANIFEST_FILE, "problem": "sha256 differs from the registry",
                         "expected": ref.manifest_sha256, "found": found})
    try:
        manifest = json.loads(data)
        entries = manifest.get("arrays", {})
    except (ValueError, AttributeError):
        return problems + [{"file": MANIFEST_FILE, "problem": "not valid JSON"}], checked, hashed
    expected_files = {MANIFEST_FILE}
    for entry in entries.values():
        name = str(entry.get("file", ""))
        expected_files.add(name)
        path = folder / name
        if not path.is_file():
            problems.append({"file": name, "problem": "missing"})
            continue
        digest = file_sha256(path)
        checked += 1
        hashed += path.stat().st_size
        if digest != entry.get("sha256"):
            problems.append({"file": name, "problem": "sha256 differs from the manifest",
                             "expected": entry.get("sha256"), "found": digest})
    for extra in sorted({p.name for p in folder.iterdir()} - expected_files):
        problems.append({"file": extra, "problem": "not listed in the manifest"})
    return problems, checked, hashed


def _verify_snapshot(ref: ArtifactRef) -> tuple[list[dict[str, Any]], int, int]:
    problems: list[dict[str, Any]] = []
    checked = hashed = 0
    for name, expected in sorted(ref.files.items()):
        path = ref.directory / name
        if not path.is_file():
            problems.append({"file": name, "problem": "missing"})
            continue
        try:
            digest = file_sha256(path, uncompressed=name.endswith(".gz"))
        except (OSError, EOFError) as exc:  # a damaged gzip stream
            problems.append({"file": name, "problem": f"unreadable: {exc}"})
            continue
        checked += 1
        hashed += path.stat().st_size
        if digest != expected:
            problems.append({"file": name, "problem": "sha256 differs from the snapshot record",
                             "expected": expected, "found": digest})
    return problems, checked, hashed


def artifact_integrity(refs: list[ArtifactRef], *, source_note: str = "") -> CheckOutcome:
    """Verify every artifact; one finding per artifact with a problem (critical when a hash differs)."""
    outcome = CheckOutcome(name="security.artifact_integrity")
    rows = []
    total_files = total_bytes = 0
    for ref in refs:
        if ref.problem:
            problems, checked, hashed = [{"file": "", "problem": ref.problem}], 0, 0
        elif ref.directory is None or not ref.directory.is_dir():
            problems, checked, hashed = [{"file": str(ref.directory or ""), "problem": "folder missing"}], 0, 0
        elif ref.kind == "model_version":
            problems, checked, hashed = _verify_model(ref)
        else:
            problems, checked, hashed = _verify_snapshot(ref)
        total_files += checked
        total_bytes += hashed
        status = "ok" if not problems else ("tampered" if any("differs" in p["problem"] for p in problems)
                                            else "damaged")
        rows.append({"kind": ref.kind, "id": ref.ident, "label": ref.label, "directory": str(ref.directory or ""),
                     "files_checked": checked, "bytes_hashed": hashed, "status": status, "problems": problems})
        if problems:
            what = "model version" if ref.kind == "model_version" else "dataset snapshot"
            outcome.findings.append(FindingDraft(
                check="security.artifact_integrity", subject=f"{ref.kind}={ref.ident}",
                severity="critical" if status == "tampered" else "high",
                title=f"Artifact integrity: {what} {ref.label} is {status} — "
                      + "; ".join(f"{p['file']}: {p['problem']}" for p in problems[:3]),
                evidence={"kind": ref.kind, "id": ref.ident, "label": ref.label,
                          "directory": str(ref.directory or ""), "problems": problems,
                          "expected_sha256": ref.manifest_sha256 or None},
            ))
    outcome.results = {"artifacts": rows, "files_checked": total_files, "bytes_hashed": total_bytes,
                       "note": source_note}
    outcome.summary = (f"{len(refs)} artifact(s), {total_files} file(s) re-hashed; "
                       + (f"{len(outcome.findings)} with problems" if outcome.findings else "all match"))
    if source_note and not refs:
        outcome.status = "unavailable"
        outcome.summary = source_note
    return outcome

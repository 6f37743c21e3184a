"""Summarise ``pip-audit --format json`` for CI, and audit what it had to skip from PyPI's project pages.

Usage: ``audit_report.py AUDIT_JSON STDERR_FILE PIP_AUDIT_EXIT_CODE [IGNORE_FILE]`` (``.ci/run`` calls it).

pip-audit asks PyPI's per-release JSON (``/pypi/<name>/<version>/json``) for advisories. Where that answers
404 for a release (as on this project's machines), pip-audit skips the package and would still print
"No known vulnerabilities found". So for each skipped package this reads the project's JSON
(``/pypi/<name>/json``), whose ``vulnerabilities`` are those of the latest release: when the installed
version *is* the latest, that is a real audit; otherwise the package is reported as not audited.

Exit status: 1 when a vulnerability not listed in IGNORE_FILE is found; 0 otherwise, including when the
advisory data cannot be reached (the reason is printed, loudly: CI must not depend on an outside service's
uptime, but nobody should mistake "not audited" for "clean").
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi/{name}/json"


def ignored_ids(path: Path | None) -> dict[str, str]:
    """Advisory ids to ignore, each with its written reason (``ID  reason`` per line, ``#`` comments)."""
    if path is None or not path.exists():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            vuln_id, _, reason = text.partition(" ")
            found[vuln_id] = reason.strip()
    return found


def project_advisories(name: str, version: str) -> tuple[str, list[dict[str, Any]]]:
    """``("audited", advisories)`` when ``version`` is PyPI's latest, else a reason it could not be audited."""
    try:
        with urllib.request.urlopen(PYPI.format(name=name), timeout=20) as answer:
            page = json.load(answer)
    except urllib.error.HTTPError as exc:
        return f"PyPI answered {exc.code}", []
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        return f"PyPI unreachable ({exc.__class__.__name__})", []
    latest = str(page.get("info", {}).get("version", ""))
    if latest != version:
        return f"installed {version}, PyPI's advisories cover only the latest ({latest})", []
    return "audited", [v for v in page.get("vulnerabilities") or [] if not v.get("withdrawn")]


Finding = tuple[str, str, str, str]
"""Package, version, advisory id, fixed versions."""


def read_pip_audit(report: dict[str, Any]) -> tuple[int, list[Finding], list[tuple[str, str]]]:
    """What pip-audit audited and found, and the packages it skipped (name, version)."""
    audited, found, skipped = 0, [], []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            if "editable" not in dep["skip_reason"]:  # Questline itself, installed from this checkout
                skipped.append((dep["name"], dep["skip_reason"].rsplit("(", 1)[-1].rstrip(")")))
            continue
        audited += 1
        found += [(dep["name"], dep["version"], v["id"], ", ".join(v.get("fix_versions", []))) for v in dep["vulns"]]
    return audited, found, skipped


def audit_skipped(skipped: list[tuple[str, str]]) -> tuple[int, list[Finding], list[str]]:
    """Audit the packages pip-audit skipped from their project pages: audited count, findings, the rest."""
    audited, found, not_audited = 0, [], []
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(lambda package: project_advisories(*package), skipped)
        for (name, version), (status, advisories) in zip(skipped, results, strict=True):
            if status != "audited":
                not_audited.append(f"{name} {version}: {status}")
                continue
            audited += 1
            found += [(name, version, a["id"], ", ".join(a.get("fixed_in", []))) for a in advisories]
    return audited, found, not_audited


def main(argv: list[str]) -> int:
    """Print the audit and return the exit status."""
    report_path, stderr_path, code = Path(argv[1]), Path(argv[2]), int(argv[3])
    ignore = ignored_ids(Path(argv[4]) if len(argv) > 4 else None)
    try:
        report = json.loads(report_path.read_text())
    except (OSError, json.JSONDecodeError):
        errors = stderr_path.read_text().strip().splitlines()[-5:] if stderr_path.exists() else []
        print(f"!! DEPENDENCIES NOT AUDITED: pip-audit exited {code} without a report")
        print("\n".join(f"   {line}" for line in errors) or "   (no output)")
        return 0
    audited, found, skipped = read_pip_audit(report)
    more, more_found, not_audited = audit_skipped(skipped)
    audited, found = audited + more, found + more_found
    print(f"pip-audit exit {code}; {audited} packages audited, {len(not_audited)} not audited")
    for name, version, vuln_id, fixed in found:
        note = f"IGNORED: {ignore[vuln_id]}" if vuln_id in ignore else f"fix: {fixed or 'none yet'}"
        print(f"   VULNERABLE {name} {version}: {vuln_id} ({note})")
    for line in not_audited:
        print(f"   not audited: {line}")
    if not found:
        print("No known vulnerabilities in the audited packages")
    return 1 if any(f[2] not in ignore for f in found) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The ``monetise`` command line as an operator drives it, on both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from application.settings import Settings
from tests.harness.ports import free_port

DEMO = Path(__file__).parents[2] / "application" / "demo" / "catalogue.yaml"


def environment(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "MONETISE_HOME": str(settings.home)}
    env.pop("MONETISE_DATABASE_URL", None)
    if settings.database_url:
        env["MONETISE_DATABASE_URL"] = settings.database_url
    return env


def monetise(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_export_and_history_from_the_command_line(
    settings: Settings,
    tmp_path: Path,
) -> None:
    first = monetise(settings, "catalogue", "import", str(DEMO), "--actor", "ops")
    exported = monetise(settings, "catalogue", "export")
    (tmp_path / "exported.yaml").write_text(exported.stdout)
    again = monetise(settings, "catalogue", "import", str(tmp_path / "exported.yaml"))
    history = monetise(settings, "catalogue", "history", "action-codes", "DBARA")

    assert first.returncode == 0, first.stderr
    assert "0 event(s) recorded" in again.stdout
    assert yaml.safe_load(exported.stdout)["action_codes"]
    assert history.stdout.split()[2:4] == ["ops", "defined"]


def test_an_invalid_file_is_refused_with_every_problem_and_exit_code_2(
    settings: Settings,
    tmp_path: Path,
) -> None:
    document = yaml.safe_load(DEMO.read_text())
    document["event_codes"][0]["linked_events"] = [
        {"type": "CRED", "code": "WARN", "sequence": 1}
    ]
    document["action_codes"][0]["code"] = "TOOLONGX"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))

    result = monetise(settings, "catalogue", "import", str(bad))

    assert result.returncode == 2
    assert "nothing was applied" in result.stderr
    assert "linked events form a cycle: CRED WARN → CRED WARN" in result.stderr
    assert "action_codes[0].code" in result.stderr


@pytest.mark.timeout(180)
def test_monetise_up_serves_health_with_the_demo_catalogue(settings: Settings) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up", "--port", str(port)],
        env=environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = _wait_for_health(base, process)
        admin_key = next(
            line.split()[0]
            for line in (settings.home / "api-keys").read_text().splitlines()
            if line.endswith(" admin admin")
        )
        headers = {"Authorization": f"Bearer {admin_key}"}
        exported = httpx.get(f"{base}/api/v1/catalogue", headers=headers)
        reimported = httpx.put(
            f"{base}/api/v1/catalogue", json=exported.json(), headers=headers
        )
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert health["status"] == "ok"
    assert "Demo catalogue" in output
    assert len(exported.json()["event_codes"]) > 10
    assert reimported.json()["events"] == 0


def _wait_for_health(base: str, process: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"monetise up exited: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            response = httpx.get(f"{base}/health", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("monetise up did not serve /health within 90 s")


def test_a_partner_encrypts_with_the_public_key_and_monetise_decrypts(
    settings: Settings,
    tmp_path: Path,
) -> None:
    from ingest.keyring import KeyRing, decrypt_file

    generated = monetise(settings, "keys", "generate", "ocs1-2026-11")
    usage = tmp_path / "usage.json"
    usage.write_text('{"header": {}, "records": []}')
    encrypted = monetise(
        settings,
        "encrypt",
        str(usage),
        "--key-id",
        "ocs1-2026-11",
        "--public-key",
        str(settings.home / "keys" / "ocs1-2026-11.pub"),
    )

    assert generated.returncode == 0, generated.stderr
    assert encrypted.returncode == 0, encrypted.stderr
    ring = KeyRing(settings.home / "keys")
    plain = b"".join(decrypt_file(tmp_path / "usage.json.enc", ring))
    assert plain == usage.read_bytes()
    again = monetise(settings, "keys", "generate", "ocs1-2026-11")
    assert again.returncode == 2
    assert "ocs1-2026-11" in again.stderr

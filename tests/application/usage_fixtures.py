"""Helpers of the usage tests: generic usage files, the inbound directories,
the loading daemons and what the usage views show.

Files are written as a sender writes them (``ingest.inbound.write_inbound``:
a hidden temporary file renamed when complete) and loaded by the daemon
itself (``scan_once``), so a test sees what an operator would: the file in
``archive/`` or ``quarantine/``, the batch and its errors, the usage views.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from application.platform import Platform
from ingest.daemons import daemon
from ingest.inbound import Handled, write_inbound
from tests.application.workflow_fixtures import Line

RATED_LOADER = "load-rated-usage"
LOADERS = {"rated": RATED_LOADER, "unrated": "load-unrated-usage"}
LISTED = 1000  # page size when a test reads a whole view


# --- generic usage files ------------------------------------------------------


def record(record_id: str, msisdn: str | None, **fields: Any) -> dict[str, Any]:
    """A valid rated record: a national voice call of 125 s for 0.25 GBP.

    ``fields`` replace or add fields; ``msisdn=None`` leaves it out.
    """
    value: dict[str, Any] = {"record_id": record_id}
    if msisdn is not None:
        value["msisdn"] = msisdn
    value |= {
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01Z",
        "duration_seconds": 125,
        "direction": "MO",
        "charge": {"amount": "0.2500", "currency": "GBP"},
    }
    value.update(fields)
    return value


def header(
    file_id: str, record_count: int, kind: str = "rated", **fields: Any
) -> dict[str, Any]:
    """A valid header; ``fields`` replace or add fields."""
    return {
        "file_id": file_id,
        "source": "OCS1",
        "created_at": "2026-11-21T10:00:00Z",
        "kind": kind,
        "record_count": record_count,
        **fields,
    }


def usage_file(
    file_id: str,
    records: list[Any],
    *,
    kind: str = "rated",
    record_count: int | None = None,
) -> bytes:
    """A generic usage file, one record a line as senders write them; its
    header counts ``record_count`` records (by default, as many as it has)."""
    count = len(records) if record_count is None else record_count
    document = {"header": header(file_id, count, kind), "records": records}
    return json.dumps(document, indent=1).encode()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- the inbound directories and the daemons ------------------------------------


def drop(
    home: Path, name: str, content: bytes | Iterable[bytes], directory: str = "rated"
) -> Path:
    """Write a complete file into ``inbound/<directory>/``; ``content`` may be
    an iterable of blocks, written one after the other (streamed)."""
    blocks = [content] if isinstance(content, bytes) else content
    return write_inbound(home, directory, name, blocks)


def run_loader(platform: Platform, directory: str = "rated") -> list[Handled]:
    """One scan of the loading daemon of ``directory``; then the usage views
    are caught up, so that they show what the scan did."""
    handled = daemon(LOADERS[directory], platform).scan_once()
    platform.usage_views.catch_up()
    return handled


def archived(home: Path, name: str, loader: str = RATED_LOADER) -> Path:
    return home / "archive" / loader / name


def quarantined(home: Path, name: str, loader: str = RATED_LOADER) -> Path:
    return home / "quarantine" / loader / name


def error_report(home: Path, name: str, loader: str = RATED_LOADER) -> Any:
    """The ``NAME.error.json`` beside a quarantined file."""
    report = quarantined(home, name, loader).with_name(f"{name}.error.json")
    return json.loads(report.read_text(encoding="utf-8"))


def files_under(directory: Path) -> list[Path]:
    """Every file below ``directory`` (hidden ones too), sorted."""
    return sorted(path for path in directory.rglob("*") if path.is_file())


# --- the usage views -----------------------------------------------------------


def batches(platform: Platform) -> list[dict[str, Any]]:
    return list(platform.usage_views.batches.batches(None, None, LISTED, 0))


def batch_named(platform: Platform, file_name: str) -> dict[str, Any]:
    """The one batch of the file received as ``file_name``."""
    (found,) = [b for b in batches(platform) if b["file_name"] == file_name]
    return found


def batch_errors(platform: Platform, batch_id: str) -> list[dict[str, Any]]:
    return list(platform.usage_views.batches.errors(batch_id, None, LISTED, 0))


def usage_of(platform: Platform, line: Line) -> dict[str, list[dict[str, Any]]]:
    """The rows of a subscription in the rated-usage (postpaid) and the
    prepaid-usage view, in start-time order."""
    views = platform.usage_views.batches
    return {
        payment_type: views.usage(
            payment_type, str(line.subscription_id), None, None, LISTED, 0
        )[0]
        for payment_type in ("postpaid", "prepaid")
    }


def ids_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]

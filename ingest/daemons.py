"""The usage-file daemons, by name, and what each does with a file.

- ``load-rated-usage`` — ``inbound/rated/``: a usage batch per file, loaded by
  the rated-usage job;
- ``load-unrated-usage`` — ``inbound/unrated/``: a usage batch per file,
  staged for offline rating;
- ``transform-openet`` — ``inbound/openet/``: delimited rated events mapped by
  the profile ``$MONETISE_HOME/profiles/openet.yaml`` (else the shipped
  default) into a generic file in ``inbound/rated/``;
- ``transform-ocs`` — ``inbound/ocs/``: ChargingDataRequest JSON lines, with
  ``$MONETISE_HOME/profiles/ocs.yaml`` (else the shipped default), likewise.

A transformation's records that cannot be transformed go to
``STEM.errors.json`` in ``quarantine/<daemon>/`` — beside the other refused
input, where operators look — and the valid rest goes on to the loader.
Every daemon runs alone (``monetise daemon NAME``) or all together inside
``monetise up``.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.inbound import FileRefused, InboundDaemon, ensure_directories

if TYPE_CHECKING:
    from application.platform import Platform

logger = logging.getLogger("monetise.daemons")

DAEMONS: dict[str, str] = {
    "load-rated-usage": "rated",
    "load-unrated-usage": "unrated",
    "transform-openet": "openet",
    "transform-ocs": "ocs",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class UnknownDaemon(LookupError):
    pass


def daemon(name: str, platform: Platform, poll_interval: float = 2.0) -> InboundDaemon:
    """The daemon called ``name``, wired to the platform."""
    directory = DAEMONS.get(name)
    if directory is None:
        raise UnknownDaemon(f"no daemon {name!r}; there are {', '.join(DAEMONS)}")
    home = platform.settings.home
    ensure_directories(home)
    handler: Callable[[Path], None]
    if directory in ("rated", "unrated"):

        def handler(path: Path) -> None:
            platform.usage.load_file(path, directory, received_by=name)

    else:
        handler = Transformer(name, directory, home)
    return InboundDaemon(name, home, directory, handler, poll_interval=poll_interval)


def run_all(
    platform: Platform, stop: threading.Event, names: list[str] | None = None
) -> list[threading.Thread]:
    """Start the daemons (all by default) in threads that end when ``stop`` is set."""
    threads = []
    for name in names or list(DAEMONS):
        runner = daemon(name, platform)
        thread = threading.Thread(
            target=runner.run, args=(stop,), name=f"monetise-{name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


class Transformer:
    """Turns a vendor file into a generic rated file in ``inbound/rated/``."""

    def __init__(self, name: str, directory: str, home: Path):
        self.name = name
        self.directory = directory
        self.home = home

    def __call__(self, path: Path) -> None:
        from ingest.transform.common import FileRefusedError, write_outputs

        profile, transform_file, source = self._profile()
        try:
            result = transform_file(path, profile, source)
        except FileRefusedError as error:
            raise FileRefused("refused_by_transformation", str(error)) from None
        except UnicodeDecodeError as error:
            raise FileRefused("invalid_encoding", str(error)) from None
        stem = _UNSAFE.sub("_", path.stem)[:60] or "file"
        work = self.home / "processing" / self.name / f".out-{stem}"
        if work.exists():
            shutil.rmtree(work)  # our own leftovers of an interrupted run
        work.mkdir(parents=True)
        written = write_outputs(result, {"file_id": stem}, work, stem)
        target = _free_name(self.home / "inbound" / "rated", f"{stem}.json")
        if written.errors_path is not None:
            quarantine = self.home / "quarantine" / self.name
            quarantine.mkdir(parents=True, exist_ok=True)
            errors = _free_name(quarantine, target.stem + ".errors.json")
            written.errors_path.replace(errors)
            logger.warning(
                "%s: %d record(s) of %s could not be transformed: %s",
                self.name,
                result.error_count,
                path.name,
                errors,
            )
        written.path.replace(target)
        shutil.rmtree(work, ignore_errors=True)

    def _profile(self) -> tuple[Any, Callable[..., Any], str]:
        if self.directory == "openet":
            from ingest.transform import openet

            custom = self.home / "profiles" / "openet.yaml"
            profile = (
                openet.load_profile(custom)
                if custom.exists()
                else openet.load_profile()
            )
            return profile, openet.transform_file, "OPENET"
        from ingest.transform import ocs, ocs_profile

        custom = self.home / "profiles" / "ocs.yaml"
        loaded = (
            ocs_profile.load_profile(custom)
            if custom.exists()
            else ocs_profile.load_profile()
        )
        return loaded, ocs.transform_file, "OCS"


def _free_name(directory: Path, name: str) -> Path:
    """``directory/name``, or with a counter before the suffix if taken."""
    candidate = directory / name
    stem, dot, suffix = name.partition(".")
    number = 1
    while candidate.exists():
        candidate = directory / f"{stem}-{number}{dot}{suffix}"
        number += 1
    return candidate

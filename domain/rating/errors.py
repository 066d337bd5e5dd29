"""Why a usage could not be rated: configuration errors listed per record."""

from __future__ import annotations

from typing import Final

CODES: Final = (
    "no_tariff",  # no tariff (version) for the rate plan at the usage's start
    "no_zone",  # roaming on a network that no zone of the tariff names
    "no_destination",  # no prefix matches the called number, and no "*" rates
    "no_rate",  # no rate for the usage class (zone, destination) at that time
    "bad_usage",  # the usage itself cannot be rated (no quantity, naive time)
)


class RatingError(Exception):
    """A usage that cannot be rated, with a ``code`` from :data:`CODES`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RatingError):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))

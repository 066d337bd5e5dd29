"""Bearer API keys: 401 for a missing or wrong key, 403 for a key without the role."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.keys import Caller, KeyRing
from api.problems import Problem

_bearer = HTTPBearer(auto_error=False, description="API key: Authorization: Bearer KEY")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def requires(*roles: str) -> Callable[..., Caller]:
    """A dependency that admits callers holding any of ``roles`` (admin: all)."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Caller:
        if credentials is None:
            raise Problem(
                401,
                "Unauthorized",
                "send an API key as 'Authorization: Bearer KEY'",
                headers=_CHALLENGE,
            )
        keys: KeyRing = request.app.state.keys
        caller = keys.caller(credentials.credentials)
        if caller is None:
            raise Problem(
                401, "Unauthorized", "the API key is not known", headers=_CHALLENGE
            )
        if not any(caller.may(role) for role in roles):
            raise Problem(
                403,
                "Forbidden",
                f"this needs the role "
                f"{' or '.join(roles)}; the key has "
                f"{', '.join(sorted(caller.roles))}",
            )
        return caller

    return dependency


reader = requires("admin", "agent", "auditor")
administrator = requires("admin")

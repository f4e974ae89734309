"""The API key: ``Authorization: Bearer <key>``, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException


def api_key_guard(key: str) -> Any:
    """A dependency that lets a request through only with the right bearer token."""
    expected = key.encode()
    bearer = HTTPBearer(auto_error=False, description="The server's API key")

    async def require_api_key(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                "A valid API key is required: send Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return Depends(require_api_key)

"""API keys with roles.

A key is sent as `Authorization: Bearer KEY` or `X-API-Key: KEY`. Keys come from `[serve] api_keys`
in the config file or `CLV_API_KEYS=key1:app,key2:marketer`. Every configured key is compared in
constant time (`hmac.compare_digest`), and all of them on every request, so the time taken says
nothing about which key came close. Keys are never logged or echoed.

Roles: `app` may read predictions and model information; `marketer` may also export lists and use
the marketer page; `admin` may also reload the model.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

PREDICT, EXPORT, ADMIN = "predict", "export", "admin"
RIGHTS = {"app": {PREDICT}, "marketer": {PREDICT, EXPORT}, "admin": {PREDICT, EXPORT, ADMIN}}
NO_KEYS_HELP = (
    "no API keys are configured, so nobody could call the service. Fix: export CLV_API_KEYS="
    "'choose-a-long-random-key:marketer' (roles: app, marketer, admin; comma-separate several), "
    "or set [serve] api_keys in clv.toml."
)


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Keyring:
    def __init__(self, keys: Mapping[str, str]):
        self._keys = [(key.encode(), role) for key, role in keys.items()]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def role_of(self, presented: str | None) -> str | None:
        if not presented:
            return None
        candidate = presented.encode()
        role = None
        for key, key_role in self._keys:
            if hmac.compare_digest(candidate, key):
                role = key_role
        return role

    def authorize(self, headers: Mapping[str, str], right: str) -> str:
        """The caller's role; raises AuthError(401) without a valid key, AuthError(403) without the right."""
        role = self.role_of(presented_key(headers))
        if role is None:
            raise AuthError(
                401,
                "missing or invalid API key. Send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
            )
        if right not in RIGHTS[role]:
            allowed = ", ".join(r for r, rights in RIGHTS.items() if right in rights)
            raise AuthError(403, f"this key's role ({role}) may not do this; it needs one of: {allowed}.")
        return role


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or None

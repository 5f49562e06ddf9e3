"""API keys and roles on their own (the HTTP 401/403 paths are in test_api.py and test_server.py)."""

from __future__ import annotations

import hmac

import pytest

from serving import auth
from serving.auth import ADMIN, EXPORT, PREDICT, AuthError, Keyring, presented_key

KEYS = {"app-secret-1": "app", "mkt-secret-2": "marketer", "adm-secret-3": "admin"}


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer   abc  "}, "abc"),
        ({"x-api-key": "abc"}, "abc"),
        ({"authorization": "Basic dXNlcjpwdw==", "x-api-key": "abc"}, "abc"),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_the_key_is_read_from_either_header(headers, key):
    assert presented_key(headers) == key


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("app", {PREDICT}), ("marketer", {PREDICT, EXPORT}), ("admin", {PREDICT, EXPORT, ADMIN})],
)
def test_each_role_has_exactly_its_rights(role, allowed):
    keyring = Keyring(KEYS)
    key = next(k for k, r in KEYS.items() if r == role)
    for right in (PREDICT, EXPORT, ADMIN):
        headers = {"x-api-key": key}
        if right in allowed:
            assert keyring.authorize(headers, right) == role
        else:
            with pytest.raises(AuthError) as caught:
                keyring.authorize(headers, right)
            assert caught.value.status == 403 and role in caught.value.message


@pytest.mark.parametrize("presented", [None, "", "wrong", "app-secret-", "app-secret-11", "APP-SECRET-1"])
def test_anything_but_a_configured_key_is_401_and_is_not_echoed(presented):
    headers = {} if presented is None else {"authorization": f"Bearer {presented}"}
    with pytest.raises(AuthError) as caught:
        Keyring(KEYS).authorize(headers, PREDICT)
    assert caught.value.status == 401
    assert "Authorization: Bearer KEY" in caught.value.message
    if presented:
        assert presented not in caught.value.message


@pytest.mark.parametrize("presented", ["app-secret-1", "adm-secret-3", "nobody"])
def test_every_key_is_compared_in_constant_time_whatever_matches(monkeypatch, presented):
    # Stopping at the first match would let response times reveal a key's position.
    calls = []
    compare = hmac.compare_digest

    def counting(a, b):
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    Keyring(KEYS).role_of(presented)
    assert sorted(calls) == sorted(k.encode() for k in KEYS)


def test_an_empty_keyring_is_falsy_so_the_service_can_refuse_to_start():
    assert not Keyring({})
    assert "CLV_API_KEYS" in auth.NO_KEYS_HELP

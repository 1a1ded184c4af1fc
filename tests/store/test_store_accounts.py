from __future__ import annotations

import pytest

from store import AlreadyExists
from store.commands import CreateAccount
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, OTHER_ACCOUNT, T0, seconds


async def test_created_account_is_active_and_can_be_read_back(store: SqliteStore) -> None:
    new = "AC" + "c" * 32
    account = await store.write(CreateAccount(new, "Third", "secret", T0 + seconds(1)))
    assert (account.sid, account.friendly_name, account.auth_token, account.status) == (
        new,
        "Third",
        "secret",
        "active",
    )
    assert account.date_created == account.date_updated == T0 + seconds(1)
    assert await store.get_account(new) == account


async def test_unknown_account_reads_as_none(store: SqliteStore) -> None:
    assert await store.get_account("AC" + "f" * 32) is None


async def test_accounts_are_listed_oldest_first(store: SqliteStore) -> None:
    assert [a.sid for a in await store.list_accounts()] == [ACCOUNT, OTHER_ACCOUNT]


async def test_duplicate_account_is_refused(store: SqliteStore) -> None:
    with pytest.raises(AlreadyExists, match=ACCOUNT):
        await store.write(CreateAccount(ACCOUNT, "Again", "x", T0))

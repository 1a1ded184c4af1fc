from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store.commands import CreateAccount
from store.sqlite import SqliteStore
from tests.store.store_kit import ACCOUNT, OTHER_ACCOUNT, OWNER, T0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "smsgw.db"


@pytest.fixture(params=["thread", "process"])
async def store(db_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SqliteStore]:
    """An open store with two accounts, `ACCOUNT` and `OTHER_ACCOUNT`; every test that takes it
    runs once with each writer (a thread of this process, and a process of its own)."""
    async with SqliteStore(db_path, owner=OWNER, writer=request.param) as s:
        await s.write(CreateAccount(ACCOUNT, "Main", "token-main", T0))
        await s.write(CreateAccount(OTHER_ACCOUNT, "Other", "token-other", T0))
        yield s

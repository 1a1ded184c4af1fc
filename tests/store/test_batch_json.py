"""Batches reach SQLite as JSON text (`working_set.dumps`): what `json` would read back exactly."""

from __future__ import annotations

import json
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from store.sqlite_ops.working_set import dumps

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    # SQLite text is UTF-8: no lone surrogates. NUL is left out: SQLite's JSON functions return
    # text cut at a NUL whoever wrote the JSON (a limit of theirs, noted in issue 11's note).
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
)
_ROWS = st.lists(st.lists(_VALUES, max_size=8), max_size=20)


@settings(max_examples=300, deadline=None)
@given(_ROWS)
def test_a_batch_is_the_json_the_stdlib_reads_back(batch) -> None:
    text = dumps(batch)
    assert isinstance(text, str)  # a BLOB argument would be read as JSONB
    assert json.loads(text) == batch


@settings(max_examples=100, deadline=None)
@given(_ROWS)
def test_sqlite_reads_every_value_of_a_batch_as_written(batch) -> None:
    conn = sqlite3.connect(":memory:")
    rows = conn.execute(
        "SELECT j.value FROM json_each(?) AS r, json_each(r.value) AS j", (dumps(batch),)
    ).fetchall()
    flat = [value for row in batch for value in row]
    assert [row[0] for row in rows] == [int(v) if isinstance(v, bool) else v for v in flat]

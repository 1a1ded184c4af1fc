"""The SQL behind `store.sqlite.SqliteStore`.

Every function here is synchronous and takes the connection it must use as its first argument:
writes run inside the group-commit writer's transaction (they never begin or commit), reads run on
a pooled read-only connection. Keeping them free of threads and asyncio keeps them testable and
keeps `SqliteStore` a thin, readable map from the public interface to these functions.
"""

"""The tests' database backend: Django's PostgreSQL backend, except how a test whose rows were committed
(``transaction=True``, the live servers and workers) is cleaned up after.

Django empties every table after such a test with one TRUNCATE of all of them. TRUNCATE gives each table
and each of its indexes a new file: ~220 ms for this project's ~45 tables, however few rows a test wrote.
DELETE empties the same tables of the few rows a test writes in ~11 ms, sent as one statement. Foreign
keys that Django made are checked at commit (deferred), so the order of the tables does not matter for
them; a table whose foreign keys are checked at once (the chunks' partitioned table, made in SQL) is
emptied first. The content types and permissions, which migrate derives from the models, are kept: a
test does not write them, and the flush no longer has them made again (see ``tests/conftest.py``,
``django_db_setup``). A flush that resets sequences or cascades is Django's own.
"""

from django.db.backends.postgresql import base

# Rows migrate makes from the models (its post_migrate receivers), not rows a test writes.
SCHEMA_ROWS = frozenset({"django_content_type", "auth_permission"})


class DatabaseOperations(base.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if not tables or reset_sequences or allow_cascade:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        immediate = self._tables_with_immediate_foreign_keys()
        ordered = sorted(set(tables) - SCHEMA_ROWS, key=lambda table: (table not in immediate, table))
        return [f"{style.SQL_KEYWORD('SET CONSTRAINTS ALL DEFERRED')};"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in ordered
        ]

    def execute_sql_flush(self, sql_list):
        """The statements in one round trip (they take no parameters)."""
        super().execute_sql_flush(["\n".join(sql_list)] if sql_list else [])

    def _tables_with_immediate_foreign_keys(self) -> set[str]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "select distinct conrelid::regclass::text from pg_constraint where contype = 'f' and not condeferred"
            )
            return {row[0] for row in cursor.fetchall()}


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

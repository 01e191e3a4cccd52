"""The SQLite queue: the one source of truth. All SQL lives in this package."""

#: the largest row id SQLite's INTEGER holds: a longer number in an address or an argument is
#: refused before it reaches a query (where it would overflow)
MAX_ROW_ID = 2**63 - 1

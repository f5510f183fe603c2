"""A witness any independent party runs (c2sp.org/tlog-witness): no Django, SQLite state.

Besides the base cosignature/v1 statement (append-only growth of the log), this witness makes an
additional statement its operator publishes with its key: it replayed the log's entries and the
checkpoint's ``map`` line is the root of the state map they build.
"""

"""Every write of the registry: validate, write, log and audit in one transaction (DESIGN.md §10).

The admin, the API and the management commands all call these functions, never the ORM directly.
"""

"""The federation (DESIGN.md §9): the bootstrap document, forwarded lookups, plan fan-out."""

"""Transparency log primitives (RFC 9162 Merkle trees); pure Python, no Django."""

"""The verifying client of the Vault Registry and its CLI, ``vault-registry``.

Pure Python: no Django import. It checks receipts (signature, key, expiry), inclusion proofs and
checkpoint signatures, keeps checkpoints consistent with what it saw before, and follows the log
through its C2SP tiles into a local SQLite mirror that resolves numbers offline.
"""

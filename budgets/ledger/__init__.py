"""The ledger: the one charge writer, the JSONL mirror and the ledger commands' logic."""

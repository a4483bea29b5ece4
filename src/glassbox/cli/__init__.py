"""The command line: a thin layer over each part's public API (one module per command group)."""

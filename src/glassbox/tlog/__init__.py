"""Glassbox tlog part (see DESIGN.md)."""

"""Glassbox sign part (see DESIGN.md)."""

"""Glassbox audit part (see DESIGN.md)."""

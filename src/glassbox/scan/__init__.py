"""Glassbox scan part (see DESIGN.md)."""

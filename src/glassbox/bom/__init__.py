"""Glassbox bom part (see DESIGN.md)."""

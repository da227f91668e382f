"""Helpers that let tests exercise real inference servers without downloading anything."""

"""Importers: files users hold (attack sets) turned into suites."""

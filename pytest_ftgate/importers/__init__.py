"""Importers: files users hold (attack sets, production logs) turned into suites."""

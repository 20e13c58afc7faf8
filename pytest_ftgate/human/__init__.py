"""Blind human evaluation: export a sheet, import the ratings."""

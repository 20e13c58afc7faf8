"""Stores: the generation cache and the frozen goldens."""

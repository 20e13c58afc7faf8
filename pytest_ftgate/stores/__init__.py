"""Stores: the generation cache, the frozen goldens, the promotion record and the history of gate runs."""

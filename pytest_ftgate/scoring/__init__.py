"""Scoring: the scorers registry, attack detectors, perturbations."""

"""Figures and reports made from runs."""

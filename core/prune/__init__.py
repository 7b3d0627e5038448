"""Structured channel pruning: units, plans, surgery."""

"""Drift: the buyer's count as a stable counterfactual for the vendor's classification."""

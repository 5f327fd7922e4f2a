"""Causal discovery on many small per-user datasets (batched DirectLiNGAM); pure numerics."""

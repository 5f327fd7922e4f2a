"""ESMR (emotion-aware social media recommendation) as a seed-partitioned Dagster asset graph."""

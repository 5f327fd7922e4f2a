"""ESMR (emotion-aware social media recommendation) as a seed-partitioned Dagster asset graph."""

# First of all: pin the numeric libraries' kernels before anything of the project loads them.
from .core import numeric_env

numeric_env.pin()

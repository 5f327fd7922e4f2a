"""Figures people would rather see than read, rendered to PNG bytes (Agg backend, no display):
one module per stage, and `common` for what they share."""

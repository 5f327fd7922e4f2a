"""Phase I simulator: content pool, user population and a structural causal model of daily
behaviour and latent emotion. Pure numpy/polars; never imports dagster, and knows nothing of
the models that observe it (it imports only the vocabulary, the schemas and the settings)."""

"""Phase I simulator: content pool, user population and a structural causal model of daily
behaviour and latent emotion. Pure numpy/polars; never imports dagster."""

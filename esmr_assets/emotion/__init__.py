"""Phase II, emotion: cluster-derived daily labels (§3.2.1) and the TabTransformer that
predicts them (§3.2.2). Pure torch/sklearn/polars; never imports dagster."""

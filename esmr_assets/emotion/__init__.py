"""Phase II, emotion: cluster-derived daily labels (§3.2.1), the TabTransformer that
predicts them (§3.2.2), and the daily labeller the closed loop runs. Pure
torch/sklearn/polars; never imports dagster."""

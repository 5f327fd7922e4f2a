"""What every figure shares: the Agg backend, the emotion colours, oracle labels and PNG bytes.

Rendering is deterministic for the same data (fixed size, no timestamps in the PNG), so the
files written beside the tables do not change between identical runs."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

EMOTION_COLOURS = {
    "happy": "#f2c14e",
    "excited": "#f78154",
    "neutral": "#b4b4b4",
    "stressed": "#b6465f",
    "disappointed": "#5d5f9e",
    "churned": "#2e2e2e",
}


def policy_labels(rows: pl.DataFrame) -> list[str]:
    """The `policy` column as axis labels, diagnostic `oracle` policies marked as such."""
    oracle = rows["oracle"] if "oracle" in rows.columns else pl.Series([False] * rows.height)
    return [f"{p} (oracle)" if o else p for p, o in zip(rows["policy"], oracle)]


def to_png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()

"""LightGBM's trees as flat arrays, scored by a compiled kernel over (user, candidate) pairs.

The closed loop scores ~112 candidates per user-day. `Booster.predict` wants an assembled
feature row per pair (a user's ~30 numbers copied 112 times) and converts each row to a
sparse vector before walking the trees. The kernel here reads each feature where it lives
(the user's row, the video's row, or a pair's own value) and walks the same trees with
LightGBM's decision rules (`Tree::NumericalDecision`, `Tree::CategoricalDecision`), summing
the trees in LightGBM's order in float64, so the raw scores are bit-identical to
`predict(raw_score=True)` (tested) and the probabilities are its sigmoid.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from esmr_assets.core import compiled

_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
_CATEGORICAL, _DEFAULT_LEFT = 1, 2  # decision_type bits
_MISSING_ZERO, _MISSING_NAN = 1, 2  # (decision_type >> 2) & 3
#: where a split's feature lives: the user's row, the video's row, the pair's own values,
#: or keyed feature j (KEYED + j)
USER, VIDEO, PAIR, KEYED = 0, 1, 2, 3


def _numbers(value: str, dtype) -> np.ndarray:
    return np.array(value.split(), dtype=dtype) if value else np.zeros(0, dtype=dtype)


@dataclass(frozen=True)
class Forest:
    """All trees of a binary LightGBM model, concatenated: node arrays indexed from each
    tree's `node_start`, leaves from its `leaf_start`; children >= 0 are nodes of the same
    tree, < 0 are leaves (~child), as in LightGBM."""

    node_start: np.ndarray  # (T,) int64
    leaf_start: np.ndarray  # (T,) int64
    num_leaves: np.ndarray  # (T,) int64
    feature: np.ndarray  # (nodes,) int64: the model's feature index
    threshold: np.ndarray  # (nodes,) float64 (numerical) or the categorical split's index
    decision: np.ndarray  # (nodes,) int64 decision_type bits
    left: np.ndarray  # (nodes,) int64
    right: np.ndarray  # (nodes,) int64
    leaf_value: np.ndarray  # (leaves,) float64
    cat_start: np.ndarray  # (T,) int64: each tree's first entry of cat_boundaries
    cat_boundaries: np.ndarray  # int64, per tree's categorical splits, offsets into cat_threshold
    cat_threshold: np.ndarray  # uint32 bitsets
    n_features: int

    @classmethod
    def from_model_text(cls, text: str) -> Forest:
        """Parse LightGBM's text model (`Booster.model_to_string`), whose numbers are
        written with round-trip precision."""
        header, _, body = text.partition("\nTree=")
        body = body.partition("\nend of trees")[0]
        fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
        objective = fields.get("objective", "").split()
        if objective[:1] != ["binary"] or "sigmoid:1" not in objective or fields.get("num_tree_per_iteration") != "1":
            raise ValueError("only single-output binary LightGBM models with sigmoid 1 can be compiled")
        trees = []
        for block in body.split("\nTree="):
            tree = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if tree.get("is_linear", "0") != "0":
                raise ValueError("linear trees cannot be compiled")
            trees.append(tree)
        trees = [t for t in trees if "num_leaves" in t]
        if not trees:
            raise ValueError("the model has no trees")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "feature", "threshold", "decision", "left", "right", "leaf_value", "cat_boundaries", "cat_threshold")}
        node_start, leaf_start, num_leaves, cat_start = [], [], [], []
        nodes = leaves = cats = cat_words = 0
        for tree in trees:
            n_leaves = int(tree["num_leaves"])
            node_start.append(nodes)
            leaf_start.append(leaves)
            num_leaves.append(n_leaves)
            cat_start.append(cats)
            parts["leaf_value"].append(_numbers(tree["leaf_value"], np.float64))
            if n_leaves > 1:
                parts["feature"].append(_numbers(tree["split_feature"], np.int64))
                parts["threshold"].append(_numbers(tree["threshold"], np.float64))
                parts["decision"].append(_numbers(tree["decision_type"], np.int64))
                parts["left"].append(_numbers(tree["left_child"], np.int64))
                parts["right"].append(_numbers(tree["right_child"], np.int64))
            if int(tree.get("num_cat", "0")) > 0:
                boundaries = _numbers(tree["cat_boundaries"], np.int64)
                parts["cat_boundaries"].append(boundaries + cat_words)
                parts["cat_threshold"].append(_numbers(tree["cat_threshold"], np.uint32))
                cats += boundaries.size
                cat_words += parts["cat_threshold"][-1].size
            nodes += n_leaves - 1
            leaves += n_leaves

        def joined(name: str, dtype) -> np.ndarray:
            return np.concatenate(parts[name]).astype(dtype) if parts[name] else np.zeros(0, dtype=dtype)

        return cls(
            node_start=np.array(node_start, np.int64),
            leaf_start=np.array(leaf_start, np.int64),
            num_leaves=np.array(num_leaves, np.int64),
            feature=joined("feature", np.int64),
            threshold=joined("threshold", np.float64),
            decision=joined("decision", np.int64),
            left=joined("left", np.int64),
            right=joined("right", np.int64),
            leaf_value=joined("leaf_value", np.float64),
            cat_start=np.array(cat_start, np.int64),
            cat_boundaries=joined("cat_boundaries", np.int64),
            cat_threshold=joined("cat_threshold", np.uint32),
            n_features=int(fields["max_feature_idx"]) + 1,
        )


def _in_order_leaves(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A tree's leaf indices from left to right (LightGBM numbers leaves by creation)."""
    if left.size == 0:
        return np.zeros(1, dtype=np.int64)
    order, stack = [], [0]
    while stack:  # depth-first, left subtree first
        node = stack.pop()
        if node < 0:
            order.append(~node)
        else:
            stack.extend((right[node], left[node]))
    return np.array(order, dtype=np.int64)


def _left_subtree_leaves(left: np.ndarray, right: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(nodes,) uint64: per node, the bits (by left-to-right leaf position) of the leaves
    in its left subtree."""
    bits = np.zeros(left.size, dtype=np.uint64)

    def below(node: int) -> int:
        if node < 0:
            return 1 << int(position[~node])
        return below(int(left[node])) | below(int(right[node]))

    for node in range(left.size):
        bits[node] = np.uint64(below(int(left[node])))
    return bits


def _categories_left(forest: Forest, tree: np.ndarray) -> np.ndarray:
    """(nodes,) uint64: per categorical split, the categories (0-63) that go left."""
    bits = np.zeros(forest.feature.size, dtype=np.uint64)
    for k in np.flatnonzero(forest.decision & _CATEGORICAL):
        split = forest.cat_start[tree[k]] + int(forest.threshold[k])
        words = forest.cat_threshold[forest.cat_boundaries[split] : forest.cat_boundaries[split + 1]]
        if np.any(words[2:]):
            raise ValueError("pair scoring handles categorical values 0-63")
        bits[k] = np.uint64(sum(int(w) << (32 * n) for n, w in enumerate(words[:2])))
    return bits


@dataclass(frozen=True)
class PairLayout:
    """Where a model's features live for a (user, video) pair, in the model's order:
    `n_user` columns of the user's row, `n_video` of the video's row, then one keyed
    feature per entry of `keys` (user table j at the column the video's column `keys[j]`
    names, such as the user's time share of the video's category), then `n_pair` values
    computed for the pair itself."""

    n_user: int
    n_video: int
    keys: tuple[int, ...] = ()
    n_pair: int = 0

    @property
    def n_features(self) -> int:
        return self.n_user + self.n_video + len(self.keys) + self.n_pair

    def sources(self, feature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source, column) of each feature index: USER, VIDEO, KEYED + j or PAIR."""
        bounds = np.cumsum([self.n_user, self.n_video, len(self.keys)])
        source = np.where(feature < bounds[0], USER, np.where(feature < bounds[1], VIDEO, PAIR))
        keyed = (feature >= bounds[1]) & (feature < bounds[2])
        source = np.where(keyed, KEYED + feature - bounds[1], source)
        start = np.select([source == USER, source == VIDEO, keyed], [0, bounds[0], feature], bounds[2])
        return source.astype(np.int64), (feature - start).astype(np.int64)


@functools.cache
def _threads(n: int) -> ThreadPoolExecutor:
    """A pool kept for the process: starting threads per call would cost more than scoring."""
    return ThreadPoolExecutor(n, thread_name_prefix="pair-scorer")


class PairScorer:
    """P(positive) of a `Forest` for (user, video) pairs laid out as `layout` says.

    QuickScorer's exit-leaf trick (Lucchese et al., SIGIR 2015): a node whose test fails
    (the row goes right) rules out the leaves of its left subtree, and the row's leaf is the
    leftmost one that no failed node rules out. So each tree's tests on the user's features
    run once per user, those on the video's once per video, those on a keyed feature once
    per user and key; a pair only ANDs the bitmasks and tests its own few features. Trees
    have at most 64 leaves."""

    def __init__(self, forest: Forest, layout: PairLayout, n_threads: int | None = None) -> None:
        if layout.n_features != forest.n_features:
            raise ValueError(f"the model has {forest.n_features} features, the layout {layout.n_features}")
        if forest.num_leaves.max() > 64:
            raise ValueError("pair scoring handles trees of up to 64 leaves")
        self.forest, self.layout = forest, layout
        self.n_threads = n_threads or os.cpu_count() or 1
        f = forest
        source, self._column = layout.sources(f.feature)
        self._tree = np.repeat(np.arange(f.node_start.size), f.num_leaves - 1)
        self._categories_left = _categories_left(f, self._tree)
        rule_out, values = [], []
        for t in range(f.node_start.size):
            nodes = slice(f.node_start[t], f.node_start[t] + f.num_leaves[t] - 1)
            in_order = _in_order_leaves(f.left[nodes], f.right[nodes])
            position = np.empty_like(in_order)
            position[in_order] = np.arange(in_order.size)
            rule_out.append(~_left_subtree_leaves(f.left[nodes], f.right[nodes], position))
            values.append(f.leaf_value[f.leaf_start[t] + in_order])
        self._rule_out = np.concatenate(rule_out) if rule_out else np.zeros(0, np.uint64)  # (nodes,)
        self._leaf_by_position = np.zeros((f.node_start.size, 64))
        for t, v in enumerate(values):
            self._leaf_by_position[t, : v.size] = v
        self._nodes_of = {kind: np.flatnonzero(source == kind) for kind in range(KEYED + len(layout.keys))}
        # the pair nodes grouped by tree: tree t's are pair_nodes[pair_start[t]:pair_start[t + 1]]
        pair_nodes = self._nodes_of[PAIR]
        self._pair_start = np.searchsorted(self._tree[pair_nodes], np.arange(f.node_start.size + 1))
        self._video_masks: tuple[np.ndarray, np.ndarray] | None = None

    def _masks(self, rows: np.ndarray, kind: int) -> np.ndarray:
        """(T, m) uint64: per tree, the leaves that the tests of `kind` on `rows` leave possible."""
        f, nodes = self.forest, self._nodes_of[kind]
        masks = np.full((f.node_start.size, rows.shape[0]), np.uint64(2**64 - 1))
        _side_masks(np.ascontiguousarray(rows, dtype=np.float32), nodes, self._tree, self._column, f.threshold,
                    f.decision, self._categories_left, self._rule_out, masks)
        return masks

    def raw(
        self, users: np.ndarray, videos: np.ndarray, candidates: np.ndarray,
        keyed: tuple[np.ndarray, ...] = (), extras: np.ndarray | None = None,
    ) -> np.ndarray:
        """(n, c) raw scores (the trees' sum, in LightGBM's order) of user i with video
        candidates[i, j]: `keyed[j]` is (n, K_j), `extras` (n, c, n_pair)."""
        layout, (n, c) = self.layout, candidates.shape
        extras = np.zeros((n, c, 0), np.float32) if extras is None else extras
        if (users.shape != (n, layout.n_user) or videos.shape[1] != layout.n_video or len(keyed) != len(layout.keys)
                or any(table.shape[0] != n for table in keyed) or extras.shape != (n, c, layout.n_pair)):
            raise ValueError("users, videos, candidates, keyed tables and extras do not fit the layout")
        if n == 0:
            return np.empty((0, c))
        # Masks are laid out (row, ..., tree) so that a pair reads each tree's masks contiguously.
        cached = self._video_masks
        if cached is None or cached[0] is not videos:
            cached = self._video_masks = (videos, self._masks(videos, VIDEO).T.copy())  # the pool is fixed: once
        # A user's masks per combination of the keys (a category and an emotion: 4 x 8), ANDed
        # with the user's own, so that a pair reads two mask rows: its user's for the video's
        # keys, and its video's.
        user_masks = np.ascontiguousarray(self._masks(users, USER).T[:, None, :])  # (n, 1, T)
        for j, table in enumerate(keyed):
            masks = self._masks(table.reshape(-1, 1), KEYED + j).reshape(-1, n, table.shape[1])  # (T, n, K_j)
            combined = np.empty((n, user_masks.shape[1] * table.shape[1], masks.shape[0]), np.uint64)
            _and_outer(user_masks, masks, combined)
            user_masks = combined
        keys = videos[:, list(layout.keys)].astype(np.int64)
        combination = np.ravel_multi_index(keys.T, [table.shape[1] for table in keyed]) if keyed else np.zeros(
            videos.shape[0], np.int64)
        f = self.forest
        out = np.empty((n, c), dtype=np.float64)
        args = (np.ascontiguousarray(user_masks), cached[1], combination,
                np.ascontiguousarray(candidates, dtype=np.int64), np.ascontiguousarray(extras, dtype=np.float32),
                out, self._nodes_of[PAIR], self._pair_start, self._column, f.threshold, f.decision,
                self._categories_left, self._rule_out, self._leaf_by_position)
        # Rows are independent: split them over threads (the kernel releases the GIL); the
        # result does not depend on the split.
        bounds = np.linspace(0, n, max(1, min(self.n_threads, n)) + 1).astype(np.int64)
        if bounds.size <= 2:
            _pair_scores(0, n, *args)
        else:
            list(_threads(bounds.size - 1).map(lambda k: _pair_scores(bounds[k], bounds[k + 1], *args),
                                               range(bounds.size - 1)))
        return out

    def probability(self, *args, **kwargs) -> np.ndarray:
        """The binary objective's transform of `raw`, 1 / (1 + exp(-raw)), with the C
        library's exp as LightGBM's, so the result is bit-identical to `Booster.predict`."""
        return _sigmoid(self.raw(*args, **kwargs))


# The kernels below are compiled: coverage tools do not see their lines run.

@compiled.njit(nogil=True)
def _goes_left(value, threshold, decision, categories_left):  # pragma: no cover
    """LightGBM's Tree::NumericalDecision / CategoricalDecision for one value; a categorical
    split's bitset is `categories_left` (categories 0-63)."""
    value = np.float64(value)
    if math.fabs(value) <= _ZERO_THRESHOLD:  # a dense row's zeros are absent features
        value = 0.0
    if decision & _CATEGORICAL:  # the category's bit in the split's bitset goes left
        if math.isnan(value) or value <= -1.0 or value >= 64.0:  # int(value) < 0 or off the bitset
            return False
        return (categories_left >> np.uint64(np.int64(value))) & np.uint64(1) == np.uint64(1)
    missing = (decision >> 2) & 3
    if math.isnan(value) and missing != _MISSING_NAN:
        value = 0.0
    if (missing == _MISSING_ZERO and math.fabs(value) <= _ZERO_THRESHOLD) or (
        missing == _MISSING_NAN and math.isnan(value)
    ):
        return (decision & _DEFAULT_LEFT) != 0
    return value <= threshold


@compiled.njit(nogil=True)
def _side_masks(rows, nodes, tree, column, threshold, decision, categories_left, rule_out, masks):  # pragma: no cover
    for k in nodes:
        t, col, thr, dec, cats, out = tree[k], column[k], threshold[k], decision[k], categories_left[k], rule_out[k]
        for r in range(rows.shape[0]):
            if not _goes_left(rows[r, col], thr, dec, cats):
                masks[t, r] &= out


@compiled.njit(nogil=True)
def _and_outer(masks, key_masks, out):  # pragma: no cover
    """out[i, p * K + k, t] = masks[i, p, t] & key_masks[t, i, k]: each combination of the keys
    so far with key k, in row-major order (as `np.ravel_multi_index`)."""
    n_keys = key_masks.shape[2]
    for i in range(masks.shape[0]):
        for p in range(masks.shape[1]):
            for k in range(n_keys):
                for t in range(masks.shape[2]):
                    out[i, p * n_keys + k, t] = masks[i, p, t] & key_masks[t, i, k]


_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DE_BRUIJN_POSITION = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    _DE_BRUIJN_POSITION[(((1 << _bit) * int(_DE_BRUIJN)) % 2**64) >> 58] = _bit


@compiled.njit(nogil=True)
def _pair_scores(start, stop, user_masks, video_masks, combination, candidates, extras, out, pair_nodes, pair_start,
                 column, threshold, decision, categories_left, rule_out, leaf_by_position):  # pragma: no cover
    n_trees = user_masks.shape[2]
    for i in range(start, stop):
        for j in range(candidates.shape[1]):
            video = candidates[i, j]
            keys = combination[video]
            total = 0.0
            for t in range(n_trees):
                mask = user_masks[i, keys, t] & video_masks[video, t]
                for p in range(pair_start[t], pair_start[t + 1]):
                    k = pair_nodes[p]
                    if not _goes_left(extras[i, j, column[k]], threshold[k], decision[k], categories_left[k]):
                        mask &= rule_out[k]
                lowest = mask & (~mask + np.uint64(1))  # the leftmost leaf still possible
                total += leaf_by_position[t, _DE_BRUIJN_POSITION[(lowest * _DE_BRUIJN) >> np.uint64(58)]]
            out[i, j] = total


@compiled.njit(nogil=True)
def _sigmoid(raw):  # pragma: no cover
    out = np.empty_like(raw)
    flat, result = raw.ravel(), out.ravel()
    for k in range(flat.size):
        result[k] = 1.0 / (1.0 + math.exp(-flat[k]))
    return out

"""Question topics: agglomerative clustering of question embeddings (cosine distance, average linkage,
a distance threshold), each topic labelled by its most central question and its key terms. Pure
functions over arrays and strings: no database.

The threshold was chosen on a labelled set of paraphrases of the shared Django FAQ questions
(tests/assistants/analytics/test_topics.py measures purity and ARI on it with all-MiniLM-L6-v2; see
docs/analytics.md for the sweep)."""

from __future__ import annotations

import numpy as np

# Cosine distance under which two groups of questions are one topic (average linkage).
DISTANCE_THRESHOLD = 0.36
# Beyond this many questions, a sample of this size is clustered and the others join the nearest topic.
MAX_CLUSTERED = 10_000


def _normalised(vectors) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)


def cluster(
    vectors, threshold: float = DISTANCE_THRESHOLD, *, max_clustered: int = MAX_CLUSTERED, seed: int = 0
) -> np.ndarray:
    """A topic number per vector (0..k-1, the largest topic first).

    Up to ``max_clustered`` vectors: agglomerative clustering (its distance matrix is quadratic: about
    400 MB at 10,000 in float32 pairs, 10 GB at 50,000). Beyond: a random sample of ``max_clustered``
    is clustered, every other vector joins the nearest topic centroid when within ``threshold``, and the
    ones near no topic (intents the sample missed) are clustered again among themselves the same way,
    as new topics."""
    n = len(vectors)
    if n <= 1:
        return np.zeros(n, dtype=int)
    array = _normalised(vectors)
    if n > max_clustered:
        labels = _cluster_sampled(array, threshold, max_clustered, seed)
    else:
        labels = _agglomerate(array, threshold)
    order = np.argsort(-np.bincount(labels), kind="stable")  # renumber: the largest topic is 0
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels]


def _agglomerate(array: np.ndarray, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(array) <= 1:
        return np.zeros(len(array), dtype=int)
    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold)
    return model.fit_predict(array)


def _cluster_sampled(array: np.ndarray, threshold: float, max_clustered: int, seed: int) -> np.ndarray:
    n = len(array)
    chosen = np.random.default_rng(seed).choice(n, size=max_clustered, replace=False)
    labels = np.full(n, -1, dtype=int)
    labels[chosen] = _agglomerate(array[chosen], threshold)
    rest = np.setdiff1d(np.arange(n), chosen)
    found = nearest(array[rest], centroids(array[chosen], labels[chosen]), threshold)
    labels[rest] = found
    far = rest[found < 0]
    if len(far):  # near no topic of the sample: topics of their own
        extra = cluster(array[far], threshold, max_clustered=max_clustered, seed=seed + 1)
        labels[far] = extra + labels.max() + 1
    return labels


def centroids(vectors, labels) -> np.ndarray:
    """Each topic's mean of its unit vectors, topic k in row k (not normalised: ``1 - x·mean`` is the
    average cosine distance from a unit vector ``x`` to the topic's questions, the linkage the
    clustering uses)."""
    array, labels = _normalised(vectors), np.asarray(labels)
    sums = np.zeros((labels.max() + 1, array.shape[1]), dtype=np.float32)
    np.add.at(sums, labels, array)
    return sums / np.bincount(labels, minlength=len(sums))[:, None]


def nearest(vectors, centres, threshold: float = DISTANCE_THRESHOLD) -> np.ndarray:
    """For each vector, the row of the nearest of ``centres`` (from ``centroids``) when its average
    cosine distance to that topic's questions is within ``threshold``, else -1."""
    array = _normalised(vectors)
    if len(array) == 0 or len(centres) == 0:
        return np.full(len(array), -1, dtype=int)
    centres = np.asarray(centres, dtype=np.float32)
    best = np.empty(len(array), dtype=int)
    for low in range(0, len(array), 4096):  # a block at a time: the similarity matrix stays small
        similarity = array[low : low + 4096] @ centres.T
        index = np.argmax(similarity, axis=1)
        close = 1.0 - similarity[np.arange(len(index)), index] <= threshold
        best[low : low + 4096] = np.where(close, index, -1)
    return best


def central(vectors) -> list[int]:
    """The members' indexes, the most central first (most similar to the topic's mean direction)."""
    array = _normalised(vectors)
    centre = array.mean(axis=0)
    return list(np.argsort(-(array @ centre), kind="stable"))


def key_terms(texts: list[str], members: list[list[int]], n: int = 4) -> list[list[str]]:
    """Each topic's ``n`` most characteristic words (mean TF-IDF over its questions, English stop
    words left out)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return [[] for _ in members]
    try:
        vectorizer = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w'-]+\b", min_df=1)
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words
        return [[] for _ in members]
    vocabulary = vectorizer.get_feature_names_out()
    terms = []
    for indexes in members:
        weights = np.asarray(matrix[indexes].mean(axis=0)).ravel()
        best = [i for i in np.argsort(-weights, kind="stable")[:n] if weights[i] > 0]
        terms.append([str(vocabulary[i]) for i in best])
    return terms


def purity(labels, truth) -> float:
    """The share of items in their topic's majority class."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    total = 0
    for k in np.unique(labels):
        _, counts = np.unique(truth[labels == k], return_counts=True)
        total += counts.max()
    return total / len(labels)

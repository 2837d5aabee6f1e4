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
    """A topic number per vector (0..k-1, the largest topic first)."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(vectors)
    if n <= 1:
        return np.zeros(n, dtype=int)
    array = _normalised(vectors)
    if n > max_clustered:
        chosen = np.random.default_rng(seed).choice(n, size=max_clustered, replace=False)
        sample_labels = cluster(array[chosen], threshold, max_clustered=max_clustered)
        centroids = _normalised(
            [array[chosen][sample_labels == k].mean(axis=0) for k in range(sample_labels.max() + 1)]
        )
        labels = np.argmax(array @ centroids.T, axis=1)
        labels[chosen] = sample_labels
    else:
        model = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold
        )
        labels = model.fit_predict(array)
    order = np.argsort(-np.bincount(labels), kind="stable")  # renumber: the largest topic is 0
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels]


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

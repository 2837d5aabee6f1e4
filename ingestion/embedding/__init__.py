"""Text embedding: one engine per process and model, loaded once.

``get_embedder(name)`` gives the engine for a model name: empty for ``settings.EMBEDDING_MODEL``
(empty again: all-MiniLM-L6-v2 from its PyPI package), a hub id or local folder of a registered
family (see ``recipes``; ``name@N`` for an MRL prefix of ``N`` dimensions), or ``gemini:…`` /
``openai:…`` for the API backends of ``ingestion.embedding.api``. Every engine has ``name``,
``dims``, ``max_length``, ``count_tokens``, ``embed_documents`` and ``embed_queries``.
"""

from __future__ import annotations

import functools
import logging
import threading

from ingestion.embedding.engine import Embedder, plan_batches, pool
from ingestion.embedding.recipes import (
    DEFAULT_MODEL,
    Recipe,
    embedding_dims,
    parse_name,
    recipe_for,
    resolve_model_path,
)

logger = logging.getLogger(__name__)

API_PREFIXES = ("gemini:", "openai:")

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "Recipe",
    "embedding_dims",
    "get_embedder",
    "parse_name",
    "plan_batches",
    "pool",
    "recipe_for",
    "resolve_model_path",
]


def get_embedder(name: str = ""):
    """The process-wide engine for ``name`` (the configured default when empty): the default model
    asked for by its name or by "" is one engine, loaded once."""
    from django.conf import settings

    name = name or settings.EMBEDDING_MODEL or DEFAULT_MODEL
    with _loading:  # many requests of a cold process ask at once: the model is loaded once, not by each
        return _engine(name)


_loading = threading.Lock()


ENGINES_KEPT = 4  # models a process keeps loaded at once


@functools.lru_cache(maxsize=ENGINES_KEPT)
def _engine(name: str):
    from django.conf import settings

    if name.startswith(API_PREFIXES):
        try:
            from ingestion.embedding.api import api_embedder
        except ModuleNotFoundError as error:
            if error.name != "ingestion.embedding.api":
                raise
            raise RuntimeError(f"{name}: API embedding backends need ingestion/embedding_api.py") from error
        return api_embedder(name)
    logger.info("loading embedding model %s", name)
    return Embedder(
        name,
        device=settings.EMBEDDING_DEVICE,
        dtype=settings.EMBEDDING_DTYPE,
        threads=settings.EMBEDDING_THREADS,
        compile=settings.EMBEDDING_COMPILE,
    )


get_embedder.cache_clear = _engine.cache_clear  # tests that change the settings start afresh

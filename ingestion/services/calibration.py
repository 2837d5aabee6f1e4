"""The answering gate of an assistant's active space, learned from its content and stored on the
space (``ingestion.search.calibration``): computed when the content changes, never per question."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.utils import timezone

from ingestion.models import EmbeddingSpace
from ingestion.search.calibration import calibrate

logger = logging.getLogger(__name__)


def space_calibrate(*, space: EmbeddingSpace, questions: Sequence[str] = ()) -> dict:
    """Measure and store ``space``'s gate; ``questions``: the team's golden questions. {} (and
    nothing stored) for a space without chunks."""
    from ingestion.embedding import get_embedder

    calibration = calibrate(space, get_embedder(space.model_name), questions)
    if calibration:
        EmbeddingSpace.objects.filter(pk=space.pk).update(calibration=calibration, calibrated_at=timezone.now())
        space.calibration = calibration
        logger.info("space %s calibrated: %s", space.pk, calibration)
    return calibration

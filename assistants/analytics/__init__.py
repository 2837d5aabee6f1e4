"""Analytics and content gaps: daily rollups (``services``, ``tasks``), the metrics defined once
(``metrics``), the pages' reads (``selectors``), question topics (``topics``) and content gaps with
their re-check (``gaps``)."""

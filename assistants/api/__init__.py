"""The versioned REST API, ``/api/v1/``: plain Django views authenticated by team API keys.

keys     API keys: create, revoke, authenticate.
http     the ``api_view`` decorator (auth, scope, rate limit, JSON, idempotency, the error shape).
views    the resources, each scoped to the key's team.
schema   the OpenAPI 3.1 document and the HTML page that renders it.
"""

"""The versioned REST API, ``/api/v1/``: django-ninja operations authenticated by team API keys.

keys       API keys: create, revoke, authenticate.
http       what every operation shares: admission (key, rate limit, scope, body size), the JSON body
           reader, the one error shape, idempotent creates.
schemas    the typed requests and responses (choices from the models, limits from settings).
views      the resources, each scoped to the key's team.
openapi    the API object: the OpenAPI document generated from the above, and the reference page.
selectors  reads through the key's team; export: conversations as JSONL or CSV.
"""

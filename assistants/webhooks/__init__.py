"""Signed webhooks: a team's endpoints, the events sent to them and the log of every attempt.

``services.emit(team=..., event_type=..., data=...)`` is the one place events leave the product: it
stores one delivery per endpoint that wants the event, and the delivery task (assistants/tasks.py)
posts it through the SSRF-safe client, signed per the Standard Webhooks specification, retrying on
``settings.WEBHOOK_RETRY_SCHEDULE``.
"""

"""Emails to a team's people: a new lead, a handoff requested, a webhook endpoint disabled.

Each is a text and an HTML template under templates/emails/, rendered with autoescaping (everything a
visitor typed is shown as text) and sent through Django's email backend (SMTP from the settings).
"""

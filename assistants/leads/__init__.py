"""Lead capture: an assistant's settings for asking visitors their contact details (when, which
fields, the consent text), the one inline form per conversation, and the scored lead records the
team works from the Leads screen, the API, emails and the ``lead.created`` webhook."""

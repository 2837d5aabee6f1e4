"""Live handoff: a person of the team takes over a conversation from the assistant.

* ``triggers``: when a conversation is handed over (the visitor asks, the assistant could not answer
  twice, an answer rated down with a comment, the team's rules) and the team's hours; pure functions.
* ``selectors``: the inbox, a conversation's card, what a live stream sends after a cursor.
* ``services``: the state machine (bot → pending → open → resolved → bot), every change recorded as a
  ``HandoffEvent``; the messages of the team and of the visitor while a person has the conversation.
* ``hooks``: the three calls other features (emails, webhooks) hang on, after each change commits.
* ``live``: Server-Sent Events for the inbox and for the visitor, woken by Redis pub/sub and read
  from the database after the client's cursor, so a reconnect resumes with nothing lost or repeated.

See docs/handoff.md.
"""

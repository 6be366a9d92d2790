"""Task-finished notifications: a signed JSON webhook and an email, per business.

`payload.py` builds what is sent (a task snapshot, no personal data), `webhook.py` signs and
posts it, `email.py` sends the mail over SMTP, `secrets.py` keeps webhook secrets encrypted at
rest. The `tasks.notify_finished` activity (activities/notify.py) drives them.
"""

"""Email over SMTP (stdlib smtplib, run in a thread so the event loop never blocks).

Permanent SMTP refusals (5xx: unknown recipient, sender refused) are not retried; connection
errors and 4xx answers are.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from longtasks.settings import Settings


class EmailError(Exception):
    pass


class EmailRetryable(EmailError):
    pass


class EmailRejected(EmailError):
    pass


def build_message(
    settings: Settings, *, to: str, subject: str, text: str, message_id: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # The same Message-ID on every retry: a mail system that saw it can drop the duplicate.
    message["Message-ID"] = message_id
    message.set_content(text)
    return message


def _send_blocking(settings: Settings, message: EmailMessage) -> None:
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise EmailRejected(f"recipients refused: {codes}") from exc
        raise EmailRetryable(f"recipients refused for now: {codes}") from exc
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        if exc.smtp_code >= 500:
            raise EmailRejected(error) from exc
        raise EmailRetryable(error) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise EmailRetryable(f"{type(exc).__name__}: {exc}") from exc


async def send(settings: Settings, message: EmailMessage) -> None:
    await asyncio.to_thread(_send_blocking, settings, message)

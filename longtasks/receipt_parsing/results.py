"""What `parse_receipt` answers: a receipt, a reason it is not one, or why it could not be read."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class ParsedReceipt:
    """A receipt read out of one Gmail message.

    `amount` is quantized to two decimal places; `currency` is an ISO 4217 code; `attachments`
    holds the message's PDF file names in message order.
    """

    gmail_message_id: str
    vendor: str
    amount: Decimal
    currency: str
    issued_at: datetime.date
    subject: str
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotAReceipt:
    """The message is not a receipt (a newsletter, a notification); `reason` says why not."""

    reason: str


class MalformedReceipt(Exception):
    """The message looks like a receipt but cannot be read.

    `code` is short and stable, for counting and filtering: `no_amount`, `bad_amount`,
    `no_currency`, `ambiguous_currency`, `bad_date`, `undecodable_body`, `no_sender`,
    `no_payload`.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

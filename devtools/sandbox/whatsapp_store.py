"""What the WhatsApp sandbox remembers of every accepted message, kept light for the collector.

The sandbox serves thousands of sends a second in benchmarks, so per-message state lives in flat
lists of strings and bytes, indexed by the message's number (its wamid is `wamid.sandbox.<n>`),
and one bytearray of status bits. None of these is a container per message: Python's full
garbage collections walk every tracked container, and ~10^5 small dicts kept per message once
paused this server for 200-300 ms (commit e5a359d).
"""

from __future__ import annotations

import enum


class StatusBit(enum.IntFlag):
    """A status webhook of a message acknowledged (2xx) by the receiver; each counted once."""

    sent = 1
    delivered = 2
    read = 4
    failed = 8


WAMID_PREFIX = "wamid.sandbox."


def wamid_of(number: int) -> str:
    return f"{WAMID_PREFIX}{number}"


class MessageStore:
    def __init__(self) -> None:
        # Index n holds message n (numbers start at 0).
        self.senders: list[str] = []
        self.recipients: list[str] = []
        self.callbacks: list[str | None] = []
        self.bodies: list[bytes] = []
        self.acknowledged = bytearray()
        # Recipient -> message numbers, oldest first: an int for one message (the usual case),
        # a tuple of ints for more. Neither is tracked by the collector.
        self._by_recipient: dict[str, int | tuple[int, ...]] = {}
        # biz_opaque_callback_data values accepted so far: a second message with the same value
        # is the duplicate a customer would notice.
        self._callbacks_seen: set[str] = set()

    def __len__(self) -> int:
        return len(self.senders)

    def add(self, sender: str, to: str, callback: str | None, body: bytes) -> tuple[int, bool]:
        """Record an accepted message; returns its number and whether its callback data was
        accepted before (a duplicate)."""
        number = len(self.senders)
        self.senders.append(sender)
        self.recipients.append(to)
        self.callbacks.append(callback)
        self.bodies.append(body)
        self.acknowledged.append(0)
        earlier = self._by_recipient.get(to)
        if earlier is None:
            self._by_recipient[to] = number
        elif isinstance(earlier, int):
            self._by_recipient[to] = (earlier, number)
        else:
            self._by_recipient[to] = (*earlier, number)
        duplicate = False
        if callback is not None:
            duplicate = callback in self._callbacks_seen
            self._callbacks_seen.add(callback)
        return number, duplicate

    def acknowledge(self, number: int, bit: StatusBit) -> bool:
        """Mark a status of a message as delivered to the webhook; True the first time."""
        if self.acknowledged[number] & bit:
            return False
        self.acknowledged[number] |= bit
        return True

    def numbers_to(self, to: str) -> tuple[int, ...]:
        found = self._by_recipient.get(to)
        if found is None:
            return ()
        return (found,) if isinstance(found, int) else found

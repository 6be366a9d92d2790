"""The key a WhatsApp send carries as `biz_opaque_callback_data`, and reading it back.

Meta echoes the value on the status webhooks of the message, so a status can name its ledger
item even when the send's answer (with the wamid) never arrived. Ids only: never a phone
number or message text (the value travels through Meta and our logs). The `lt1` prefix tells
our keys from other apps' on the same WhatsApp Business Account, and leaves room to change the
format.
"""

from __future__ import annotations

PREFIX = "lt1"
_MAX_ITEM_KEY = 200


def callback_data_for(task_id: int, item_key: str) -> str:
    return f"{PREFIX}:{task_id}:{item_key}"


def parse_callback_data(value: object) -> tuple[int, str] | None:
    """(task id, item key) of a value `callback_data_for` made; None for anything else."""
    if not isinstance(value, str):
        return None
    prefix, _, rest = value.partition(":")
    task, _, item_key = rest.partition(":")
    if prefix != PREFIX or not (task.isascii() and task.isdigit()) or len(task) > 18:
        return None
    if not item_key or len(item_key) > _MAX_ITEM_KEY or not item_key.isprintable():
        return None
    return int(task), item_key

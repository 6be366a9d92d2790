"""Reading receipts out of Gmail messages: a pure parser, no I/O."""

from longtasks.receipt_parsing.parser import parse_receipt
from longtasks.receipt_parsing.results import MalformedReceipt, NotAReceipt, ParsedReceipt

__all__ = ["MalformedReceipt", "NotAReceipt", "ParsedReceipt", "parse_receipt"]

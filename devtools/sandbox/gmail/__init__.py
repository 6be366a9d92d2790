"""A sandbox Gmail API (aiohttp.web) for dev mode, tests and benchmarks.

It speaks the REST shape of the real service, so `longtasks.providers.gmail.GmailHttpClient`
talks to it unchanged:

- `GET  /gmail/v1/users/{userId}/messages?q=&pageToken=&maxResults=` (newest first)
- `GET  /gmail/v1/users/{userId}/messages/{id}?format=full|metadata|minimal`
- `GET  /gmail/v1/users/{userId}/messages/{id}/attachments/{attachmentId}`
- `GET  /gmail/v1/users/{userId}/profile`
- `GET  /gmail/v1/users/{userId}/history?startHistoryId=&pageToken=&maxResults=`
- `POST /oauth2/token` (form: grant_type=refresh_token, refresh_token, client_id, client_secret)

Control endpoints (no auth; JSON in and out):
- `POST /sandbox/gmail/accounts` {email, refresh_token?} -> 201 {email, refresh_token,
  access_token, expires_in, history_id}
- `POST /sandbox/gmail/accounts/{email}/expire_access_tokens` -> {expired}
- `POST /sandbox/gmail/accounts/{email}/revoke` -> {revoked: true}
- `POST /sandbox/gmail/accounts/{email}/deliver` {count, kind?} -> {message_ids, history_id}
- `POST /sandbox/gmail/accounts/{email}/expire_history` -> {history_id}
- `GET  /sandbox/gmail/accounts/{email}/messages/{id}/facts` -> the generator's facts
- `PUT  /sandbox/gmail/quota` {quota_units_per_s?, rate_limit_403_fraction?}
- `PUT  /sandbox/gmail/faults` {server_error_rate}
- `GET  /sandbox/gmail/stats`

One module a concept:
- `corpus`: what message *i* of a mailbox is (receipts, newsletters, malformed ones), seeded;
- `messages`: a generated message as Gmail's message resource, and the facts a parser should
  read from it (`GmailSandbox.message_facts`);
- `mailbox`: an account's messages as one index space (the generated archive, then messages
  delivered later) and its history records;
- `query`: Gmail's search language (`q=`), parsed and matched;
- `server`: `GmailSandbox`, the HTTP routes, OAuth tokens, quota, faults and control endpoints.
"""

from devtools.sandbox.gmail.corpus import KINDS, Kind
from devtools.sandbox.gmail.messages import MessageFacts
from devtools.sandbox.gmail.server import GmailSandbox

__all__ = ["KINDS", "GmailSandbox", "Kind", "MessageFacts"]

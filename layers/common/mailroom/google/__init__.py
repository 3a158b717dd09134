"""Google-facing domain code: OAuth scopes and the Gmail link."""

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
# Everything the agent needs: read and search, draft, send (after the user's Approve).
GMAIL_SCOPES = (GMAIL_READONLY, GMAIL_COMPOSE, GMAIL_SEND)

SCOPE_NAMES = {GMAIL_READONLY: "read", GMAIL_COMPOSE: "compose", GMAIL_SEND: "send"}

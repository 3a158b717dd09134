"""Google-facing domain code: OAuth scopes and the Gmail link."""

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
# Labels, archive, read/unread, star, Trash (never permanent deletion). Added after the
# first release: links made before it lack it, and are asked to link again.
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
# Everything the agent needs: read and search, draft, send (after the user's Approve), tidy.
GMAIL_SCOPES = (GMAIL_READONLY, GMAIL_COMPOSE, GMAIL_SEND, GMAIL_MODIFY)

SCOPE_NAMES = {
    GMAIL_READONLY: "read",
    GMAIL_COMPOSE: "compose",
    GMAIL_SEND: "send",
    GMAIL_MODIFY: "tidy (labels, archive)",
}

"""Errors the domain raises, by what the caller should do about them."""


class MailroomError(Exception):
    """Base of the errors below."""


class ConfigurationError(MailroomError):
    """A setting or secret is missing: an operator must fix the deployment."""


class TransientError(MailroomError):
    """Worth retrying later (a dependency is throttling or briefly down)."""


class ToolInputError(MailroomError):
    """Something the model asked for that cannot be done as asked (an unknown message
    id, a bad query): reported back to the model so it can correct itself."""

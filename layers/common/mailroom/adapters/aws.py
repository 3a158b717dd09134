"""AWS clients for the adapters, made on first use and then kept."""

from __future__ import annotations

from typing import Any

_session: Any = None


def _botocore_session() -> Any:
    """One botocore session per process, as boto3's default session is. Clients come
    straight from botocore: boto3 adds only resources, which no adapter uses, and its
    import is a tenth of the ingress's cold start."""
    global _session
    if _session is None:
        import botocore.session

        _session = botocore.session.get_session()
    return _session


class LazyClient:
    """Call it for the client. Nothing is built at import or construction (cold start,
    SnapStart snapshots), and a warm Lambda reuses the one it built. An injected client
    (tests, benchmarks) is used as is."""

    def __init__(self, service: str, client: Any | None = None, config: Any | None = None):
        self._service = service
        self._client = client
        self._config = config

    def __call__(self) -> Any:
        if self._client is None:
            self._client = _botocore_session().create_client(self._service, config=self._config)
        return self._client


def quick_config() -> Any:
    """For calls made while a turn saves and answers (inside the worker's time margin):
    a few seconds per try and three tries, so throttling or a stalled connection ends
    as a transient failure well before the Lambda's timeout."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})

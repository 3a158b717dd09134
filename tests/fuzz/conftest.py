from tests.integration.conftest import harness  # noqa: F401  (the in-process worker and callback)

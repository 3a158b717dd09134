"""Mailroom's domain package: shared by every Lambda function through the shared layer.

Handlers stay thin; the logic lives here, behind small ports (see `ports`) with the
adapters for Slack, SQS and AWS under `adapters`.
"""

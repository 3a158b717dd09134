"""Adapters: the ports implemented on real services (boto3, slack-sdk)."""

"""Mailroom never deletes mail permanently: the Gmail adapter calls no method that does
(messages.delete, messages.batchDelete, threads.delete, drafts.delete). Trash is the
furthest anything goes, and only after a press."""

from __future__ import annotations

import ast
from pathlib import Path

import mailroom.adapters.gmail_api as gmail_api

PERMANENT = {"delete", "batchDelete"}


def test_the_gmail_adapter_calls_no_permanent_delete():
    tree = ast.parse(Path(gmail_api.__file__).read_text())
    called = {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "batchModify" in called, "the adapter is the one that changes labels"
    assert not called & PERMANENT

"""`make demo` runs and shows what it promises: an Edit before the approval (issue 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_demo_shows_an_edit_before_the_approval_and_sends_the_edited_email():
    run = subprocess.run(
        [sys.executable, "-m", "infra.local.demo"], cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )
    out = run.stdout
    assert run.returncode == 0, run.stderr[-2000:]
    edit = out.index("ada presses *Edit*")
    replaced = out.index("Replaced by your edited version below", edit)
    card = out.index("Send this email as you edited it?", replaced)
    approve = out.index("ada presses *Approve and send*", card)
    assert "Subject: Lunch on Friday" in out[card:approve]
    assert "Approve and send Edit Cancel" in out[card:approve]
    sent = out[approve:]
    assert "and sent (Gmail id" in sent and "subject 'Lunch on Friday'" in sent
    assert "dead letters: 0" in out

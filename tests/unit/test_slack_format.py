import re

import pytest

from mailroom.slack.format import split_message, to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**Alice** wrote", "*Alice* wrote"),
        ("__bold__ too", "*bold* too"),
        ("## Summary", "*Summary*"),
        ("- one\n- two", "• one\n• two"),
        ("see [the doc](https://example.com/a?b=1)", "see the doc (link to example.com: `https://example.com/a?b=1`)"),
        ("Alice <alice@example.com> & Bob", "Alice &lt;alice@example.com&gt; &amp; Bob"),
        ("keep `**code**` as is", "keep `**code**` as is"),
        ("```\n# not a heading\n```", "```\n# not a heading\n```"),
    ],
)
def test_markdown_becomes_slack_mrkdwn(markdown, mrkdwn):
    assert to_mrkdwn(markdown) == mrkdwn


def test_a_short_answer_is_one_message():
    assert split_message("hello") == ["hello"]


def test_a_long_answer_is_split_at_paragraphs_within_the_limit():
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(12)]
    text = "\n\n".join(paragraphs)
    pieces = split_message(text, limit=2000)
    assert all(len(piece) <= 2000 for piece in pieces)
    assert len(pieces) > 1
    assert all(piece.startswith("Paragraph") for piece in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_text_without_boundaries_is_still_cut_to_the_limit():
    pieces = split_message("x" * 9000, limit=4000)
    assert [len(p) for p in pieces] == [4000, 4000, 1000]


@pytest.mark.parametrize(
    "markdown",
    [
        "[Reconnect Gmail](https://evil.example/login?d=secret)",
        "![logo](https://evil.example/pixel.png?d=secret)",
        "[Reconnect Gmail](<https://evil.example/login?d=secret>)",
        "see https://evil.example/pixel.png?d=secret.",
        "see www.evil.example/p?d=secret",
        "see evil.example/p?d=secret",
        "[x](javascript:alert(1))",
        "<https://evil.example/?d=secret|Reconnect Gmail>",
    ],
)
def test_no_link_in_an_answer_is_live(markdown):
    """Slack links only `<url|label>` and bare URLs outside code; neither may survive."""
    mrkdwn = to_mrkdwn(markdown)
    outside_code = re.sub(r"`[^`]*`", "", mrkdwn)
    assert "<http" not in mrkdwn and "|" not in outside_code
    assert not re.search(r"(https?://|evil\.example/)", outside_code), mrkdwn  # no scheme, no path
    if "evil.example" in markdown:
        assert "evil.example" in outside_code  # the host is named in plain text


def test_a_masked_link_shows_its_label_and_where_it_really_goes():
    assert to_mrkdwn("[Reconnect Gmail](https://evil.example/login)") == (
        "Reconnect Gmail (link to evil.example: `https://evil.example/login`)"
    )


def test_a_backtick_in_a_url_cannot_close_its_code_span():
    mrkdwn = to_mrkdwn("https://evil.example/`x`https://evil.example/y")
    assert mrkdwn.count("`") % 2 == 0
    assert not re.search(r"https?://", re.sub(r"`[^`]*`", "", mrkdwn))

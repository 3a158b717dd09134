import pytest

from mailroom.slack.format import split_message, to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**Alice** wrote", "*Alice* wrote"),
        ("__bold__ too", "*bold* too"),
        ("## Summary", "*Summary*"),
        ("- one\n- two", "• one\n• two"),
        ("see [the doc](https://example.com/a?b=1)", "see <https://example.com/a?b=1|the doc>"),
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

"""Text from a corpus made safe: no credentials from URIs, no forged log lines."""

from __future__ import annotations

from savos_job.redact import log_text, redact


def test_credentials_in_uris_are_removed() -> None:
    text = "cannot read https://alice:s3cr3t@host/a@b.jpg and s3://KEY:SECRET@bucket/x, nor /local/a@b"
    assert redact(text) == "cannot read https://***@host/a@b.jpg and s3://***@bucket/x, nor /local/a@b"


def test_log_text_escapes_what_would_forge_a_line() -> None:
    forged = "clip\n2026-01-01 INFO savos_job.prelabel: videos done 999\x1b[2J"
    assert log_text(forged) == "clip\\n2026-01-01 INFO savos_job.prelabel: videos done 999\\x1b[2J"
    assert log_text("ours 熊 ok") == "ours 熊 ok"

"""The one list of dead-letter reasons (`contract.errors.DeadLetterReason`) and its documentation
agree: the generated table in docs/wire-format.md is the enum's, and the tables that say when each
reason fires name every reason and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from contract.errors import DeadLetterReason, reasons_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"
BEGIN = "<!-- generated from contract.errors.DeadLetterReason: begin -->\n"
END = "<!-- generated from contract.errors.DeadLetterReason: end -->"


def _split_doc() -> tuple[str, str]:
    """(the generated block, the rest of the document)."""
    text = DOC.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{DOC} lost its generated-table markers"
    head, rest = text.split(BEGIN)
    block, tail = rest.split(END)
    return block, head + tail


def _reason_tables(text: str) -> list[str]:
    """The first cell (a backticked reason) of every row of every table headed `| reason ...`."""
    reasons: list[str] = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("| reason"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        cell = line.split("|")[1].strip()
        if in_table and not set(cell) <= {"-"}:
            match = re.fullmatch(r"`([a-z_]+)`", cell)
            assert match, f"a reason table row does not start with a backticked reason: {line}"
            reasons.append(match.group(1))
    return reasons


def test_the_generated_table_is_the_enum() -> None:
    block, _ = _split_doc()
    assert block == reasons_table(), (
        f"docs/wire-format.md disagrees with contract.errors.DeadLetterReason; between the markers put:\n"
        f"{reasons_table()}"
    )


def test_the_detailed_tables_cover_every_reason_and_no_other() -> None:
    _, rest = _split_doc()
    documented = set(_reason_tables(rest))
    members = {r.value for r in DeadLetterReason}
    assert documented - members == set(), "documented reasons that ingest never stores"
    assert members - documented == set(), "reasons without a 'fires when' row in docs/wire-format.md"


def test_each_reason_is_stored_as_its_value_with_a_one_line_meaning() -> None:
    for reason in DeadLetterReason:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", reason.value)
        assert str(reason) == reason.value == f"{reason}"  # what logs, metrics and the store see
        assert reason.meaning and "\n" not in reason.meaning and "|" not in reason.meaning
    assert len({r.value for r in DeadLetterReason}) == len(DeadLetterReason)

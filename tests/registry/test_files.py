"""Registry files: every row keeps the line it came from, so a bad row can be named; what is
written reads back to the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.files import RegistryFileError, read_csv, read_registry_file, read_toml, write_csv, write_toml
from registry.store import validate_rows

EXAMPLE = Path(__file__).parents[2] / "deploy" / "registry.example.toml"


def test_toml_rows_carry_the_line_of_their_table_header() -> None:
    text = '[[fleets]]\nfleet_id = "a"\nname = "A"\n\n[[vehicles]]\nvehicle_id = "V1"\n\n'
    text += '[[fleets]]\nfleet_id = "b"\n'
    rows, problems = read_toml(text)
    assert problems == []
    assert [(r.kind, r.line, dict(r.fields)) for r in rows] == [
        ("fleets", 1, {"fleet_id": "a", "name": "A"}),
        ("fleets", 8, {"fleet_id": "b"}),
        ("vehicles", 5, {"vehicle_id": "V1"}),
    ]


def test_an_unknown_section_is_a_problem_and_broken_toml_an_error() -> None:
    rows, problems = read_toml('[[garages]]\nid = "x"\n[[fleets]]\nfleet_id = "a"\nname = "A"\n')
    assert len(rows) == 1 and [(p.line, "garages" in p.message) for p in problems] == [(1, True)]
    with pytest.raises(RegistryFileError, match="not valid TOML"):
        read_toml("[[fleets]\n")


def test_csv_rows_carry_their_line_and_empty_cells_are_absent() -> None:
    text = 'vehicle_id,vin,owner_id\nV1,,o1\n"V2",YV1SW61R021234567,\n'
    rows = read_csv(text, "vehicles")
    assert [(r.line, dict(r.fields)) for r in rows] == [
        (2, {"vehicle_id": "V1", "owner_id": "o1"}),
        (3, {"vehicle_id": "V2", "vin": "YV1SW61R021234567"}),
    ]
    with pytest.raises(RegistryFileError, match="unknown kind"):
        read_csv(text, "garages")


def test_the_example_file_is_valid() -> None:
    rows, problems = read_registry_file(EXAMPLE)
    good, bad = validate_rows(rows)
    assert problems == [] and bad == [] and len(good) == len(rows) > 10


def test_written_files_read_back_to_the_same_records() -> None:
    rows, _ = read_registry_file(EXAMPLE)
    good, _ = validate_rows(rows)
    by_kind: dict[str, list[dict]] = {}
    for _, record in good:
        by_kind.setdefault(record.KIND, []).append(record.row())
    again, _ = validate_rows(read_toml(write_toml(by_kind))[0])
    assert [r for _, r in again] == [r for _, r in good]
    for kind, kind_rows in by_kind.items():
        from_csv, _ = validate_rows(read_csv(write_csv(kind, kind_rows), kind))
        assert [r for _, r in from_csv] == [r for _, r in good if kind == r.KIND]

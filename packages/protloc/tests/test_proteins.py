"""Protein lists: JSON forms, and legacy pickles only as a plain dict of str -> int."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from protloc.data.proteins import ProteinList, read_protein_list
from protloc.errors import DataError, ProteinError


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_json_list_and_dict_give_the_same_order(tmp_path):
    """A list's order and a dict's ids define the same ids."""
    (tmp_path / "a.json").write_text(json.dumps(["B", "A"]))
    (tmp_path / "b.json").write_text(json.dumps({"A": 1, "B": 0}))
    assert read_protein_list(tmp_path / "a.json") == read_protein_list(tmp_path / "b.json")
    assert read_protein_list(tmp_path / "a.json").index("A") == 1


def test_legacy_plain_dict_pickle_is_read(tmp_path):
    """The original's {gene: id} pickle loads."""
    path = tmp_path / "nuclear_protein_dict.pkl"
    path.write_bytes(pickle.dumps({"LMNB1": 0, "H2BC21": 1}))
    assert read_protein_list(path).names == ("LMNB1", "H2BC21")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"A": _Evil()}, "posix.system"),
        ([("A", 0)], "holds a list"),
        ({"A": "0"}, "map names"),
        ({"A": 0, "B": 2}, "must be 0..1"),
    ],
)
def test_pickle_with_anything_but_a_plain_dict_is_refused(tmp_path, payload, message):
    """Globals (code), other containers and non-int ids are refused without running anything."""
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(DataError, match=message.split(".")[-1]):
        read_protein_list(path)


def test_unknown_protein_names_the_close_matches():
    """An unknown name is a ProteinError that suggests the nearest known names."""
    proteins = ProteinList(["LMNB1", "ACTB", "TOMM20"])
    with pytest.raises(ProteinError, match="unknown protein 'LMNB2'.*Did you mean LMNB1"):
        proteins.index("LMNB2")


def test_duplicate_names_are_an_error():
    """Each protein appears once."""
    with pytest.raises(DataError, match="more than once"):
        ProteinList(["A", "B", "A"])

"""Protein lists: name -> integer id, read from JSON, CSV-free, and from legacy pickles safely.

The original kept ``{gene: id}`` as a pickle. Unpickling runs code, so a legacy file goes through
a restricted unpickler that builds only dicts, strings and integers and refuses every global
(class, function) a pickle could name; anything but a plain ``str -> int`` dict is an error.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from protloc.errors import DataError, ProteinError

__all__ = ["ProteinList", "read_legacy_pickle", "read_protein_list", "write_protein_list"]

_MAX_PICKLE_BYTES = 16 << 20


class ProteinList:
    """An ordered list of protein names; a protein's id is its index."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(str(n) for n in names)
        if not self.names:
            raise DataError("the protein list is empty; it needs at least one protein name")
        if len(set(self.names)) != len(self.names):
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            raise DataError(f"the protein list names {', '.join(dupes)} more than once")
        self._index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProteinList) and other.names == self.names

    def __repr__(self) -> str:
        return f"ProteinList({list(self.names)!r})"

    def index(self, name: str) -> int:
        """The id of ``name``; :class:`ProteinError` naming close matches when it is unknown."""
        try:
            return self._index[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            shown = ", ".join(self.names[:20]) + (" ..." if len(self.names) > 20 else "")
            raise ProteinError(
                f"unknown protein {name!r}: the model knows {len(self.names)} proteins ({shown}).{hint}"
            ) from None

    def indices(self, names: Sequence[str]) -> list[int]:
        """Ids of several names (each checked)."""
        return [self.index(n) for n in names]


def _from_mapping(mapping: Mapping[object, object], source: Path) -> ProteinList:
    items = list(mapping.items())
    for key, value in items:
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{source}: protein lists map names (str) to ids (int); found {key!r}: {value!r}")
    ids = sorted(v for _, v in items)  # type: ignore[misc]
    if ids != list(range(len(items))):
        raise DataError(
            f"{source}: protein ids must be 0..{len(items) - 1}, each once; found {ids[:10]}"
            f"{' ...' if len(ids) > 10 else ''}"
        )
    return ProteinList(k for k, _ in sorted(items, key=lambda kv: kv[1]))  # type: ignore[arg-type,return-value]


class _PlainDictUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        raise DataError(
            f"the pickle refers to {module}.{name}; protloc reads only a plain dict of str -> int "
            "from legacy pickles. Convert the file to JSON with a trusted Python."
        )


def read_legacy_pickle(path: str | Path) -> ProteinList:
    """A legacy ``{gene: id}`` pickle, through an unpickler that refuses any class or function."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) > _MAX_PICKLE_BYTES:
        raise DataError(f"{path} is {len(data)} bytes; a protein-list pickle is far smaller")
    try:
        obj = _PlainDictUnpickler(io.BytesIO(data)).load()
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of a foreign pickle is bad input
        raise DataError(
            f"{path} is not a readable protein-list pickle ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(obj, dict):
        raise DataError(
            f"{path} holds a {type(obj).__name__}; a protein-list pickle holds a dict of str -> int"
        )
    return _from_mapping(obj, path)


def read_protein_list(path: str | Path) -> ProteinList:
    """Read a protein list: JSON (list of names or {name: id}) or a legacy ``.pkl``/``.pickle``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"protein list {path} does not exist; pass a JSON file of protein names")
    if path.suffix.lower() in {".pkl", ".pickle"}:
        return read_legacy_pickle(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"protein list {path} is not valid JSON: {err}") from err
    if isinstance(obj, dict) and "proteins" in obj and isinstance(obj["proteins"], list):
        obj = obj["proteins"]
    if isinstance(obj, list):
        if not all(isinstance(n, str) for n in obj):
            raise DataError(f"protein list {path}: every entry must be a protein name (string)")
        return ProteinList(obj)
    if isinstance(obj, dict):
        return _from_mapping(obj, path)
    raise DataError(f"protein list {path} holds a {type(obj).__name__}; expected a list or a dict")


def write_protein_list(path: str | Path, proteins: ProteinList, *, overwrite: bool = False) -> Path:
    """Write ``proteins`` as a JSON list of names (the id is the position)."""
    from cellsight_shared.io import ensure_absent, write_json

    ensure_absent(path, overwrite=overwrite)
    return write_json(path, list(proteins.names), overwrite=True)

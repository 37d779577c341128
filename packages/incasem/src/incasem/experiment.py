"""Every train and predict run is a sacred experiment (config, metrics, artifacts, host, status).

By default runs are recorded by a ``FileStorageObserver`` under ``<run dir>/sacred`` (or a
SQLite database, ``observer="sqlite"``), so nothing needs a server. With a MongoDB URL
(``--mongo-url`` or ``$INCASEM_MONGO_URL``) a ``MongoObserver`` records them too, in the layout
Omniboard reads. A password is best given in ``$INCASEM_MONGO_PASSWORD`` (it is inserted into
the URL, which otherwise lands in shell history and ``ps``); URLs are always logged redacted.
sacred and pymongo are imported only when a run starts.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel

from incasem.errors import ConfigError, IncasemError

__all__ = [
    "MONGO_PASSWORD_ENV",
    "MONGO_URL_ENV",
    "ExperimentRun",
    "mongo_url_with_password",
    "redact_url",
    "run_experiment",
]

logger = logging.getLogger(__name__)

MONGO_URL_ENV = "INCASEM_MONGO_URL"
MONGO_PASSWORD_ENV = "INCASEM_MONGO_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
#: How long pymongo looks for a server before the run fails (milliseconds).
MONGO_TIMEOUT_MS = 10_000

T = TypeVar("T")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def mongo_url_with_password(url: str, *, env: Mapping[str, str] | None = None) -> str:
    """Insert ``$INCASEM_MONGO_PASSWORD`` into ``url`` when it names a user but no password."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise ConfigError(f"MongoDB URL {redact_url(url)!r} must start with mongodb:// or mongodb+srv://")
    password = env.get(MONGO_PASSWORD_ENV)
    if parts.username and parts.password is None and password:
        netloc = f"{parts.username}:{quote(password, safe='')}@{parts.netloc.split('@', 1)[1]}"
        return urlunsplit(parts._replace(netloc=netloc))
    if parts.password is not None:
        logger.warning(
            "the MongoDB URL carries a password; prefer $%s so it stays out of shell history",
            MONGO_PASSWORD_ENV,
        )
    return url


@dataclass
class ExperimentRun:
    """What the wrapped function gets: the sacred run's id and ways to record into it."""

    _run: Any

    @property
    def id(self) -> Any:
        """The run id the observers assigned (an int for the file, SQLite and Mongo observers)."""
        run_id = self._run._id
        return int(run_id) if isinstance(run_id, str) and run_id.isdigit() else run_id

    @property
    def info(self) -> dict:
        """Free-form dict stored with the run (JSON values only)."""
        return self._run.info

    def log_scalar(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric value (shown by Omniboard as a curve)."""
        self._run.log_scalar(name, float(value), step)

    def add_artifact(self, path: Path | str, name: str | None = None) -> None:
        """Store a file with the run (copied by the observers)."""
        self._run.add_artifact(str(path), name=name)


def _observers(
    run_dir: Path,
    *,
    observer: Literal["file", "sqlite", "none"],
    mongo_url: str | None,
    mongo_db: str,
    mongo_timeout_ms: int,
) -> list[Any]:
    observers: list[Any] = []
    if observer == "file":
        from sacred.observers import FileStorageObserver

        observers.append(FileStorageObserver(str(run_dir / "sacred")))
    elif observer == "sqlite":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy 2 deprecation warnings inside sacred
            from sacred.observers import SqlObserver

            observers.append(SqlObserver(f"sqlite:///{(run_dir / 'sacred.sqlite').resolve()}"))
    elif observer != "none":
        raise ConfigError(f"observer must be 'file', 'sqlite' or 'none', got {observer!r}")
    if mongo_url:
        from sacred.observers import MongoObserver

        url = mongo_url_with_password(mongo_url)
        logger.info("recording the run in MongoDB %s, database %s", redact_url(url), mongo_db)
        observers.append(
            MongoObserver(
                url=url,
                db_name=mongo_db,
                # a run Mongo could not store is kept here instead of being lost
                failure_dir=str(run_dir / "sacred_mongo_failed"),
                serverSelectionTimeoutMS=mongo_timeout_ms,
            )
        )
    return observers


def run_experiment(
    name: str,
    config: BaseModel,
    main: Callable[[ExperimentRun], T],
    *,
    run_dir: Path | str,
    observer: Literal["file", "sqlite", "none"] = "file",
    mongo_url: str | None = None,
    mongo_db: str = "incasem",
    mongo_timeout_ms: int | None = None,
) -> T:
    """Run ``main(run)`` as the sacred experiment ``name`` and return what it returns.

    The run's config is ``config.model_dump(mode="json")``; the observers record it with the
    host, the package sources, status, metrics (``run.log_scalar``) and artifacts. Errors
    raised by ``main`` propagate unchanged (the run is marked FAILED); a MongoDB that cannot be
    reached raises :class:`IncasemError` with the URL redacted.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pkg_resources deprecation in sacred 0.8.7
        warnings.simplefilter("ignore", DeprecationWarning)
        from sacred import Experiment

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    experiment = Experiment(name, save_git_info=False)
    # sacred would otherwise attach its own stream handler; libraries must not configure logging.
    experiment.logger = logging.getLogger(f"incasem.experiment.{name}")
    experiment.add_config(config.model_dump(mode="json"))
    try:
        experiment.observers.extend(
            _observers(
                run_dir,
                observer=observer,
                mongo_url=mongo_url,
                mongo_db=mongo_db,
                mongo_timeout_ms=mongo_timeout_ms or MONGO_TIMEOUT_MS,
            )
        )
    except IncasemError:
        raise
    except Exception as err:  # pymongo raises ConfigurationError/InvalidURI for bad URLs
        raise ConfigError(
            f"cannot use MongoDB URL {redact_url(mongo_url or '')!r}: {type(err).__name__}: "
            f"{redact_url(str(err))}"
        ) from err

    result: dict[str, T] = {}

    def experiment_main(_run: Any) -> None:
        result["value"] = main(ExperimentRun(_run))

    experiment.main(experiment_main)
    try:
        experiment.run(options={"--capture": "no"})
    except Exception as err:
        if _is_mongo_error(err):
            raise IncasemError(
                f"MongoDB at {redact_url(mongo_url or '')} could not record the run "
                f"({type(err).__name__}: {redact_url(str(err)).splitlines()[0]}); check that the "
                f"server runs and the URL, or drop --mongo-url/${MONGO_URL_ENV} to record to files"
            ) from err
        raise
    return result["value"]


def _is_mongo_error(err: BaseException) -> bool:
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 10:
        if type(current).__module__.split(".")[0] in ("pymongo", "gridfs"):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False

"""The DM8 defects dmitems knows of, as data, and their status in this installation.

:data:`DEFECTS` is the catalogue (the README's DM8 table is made from it): for
each defect, what a user sees, what dmitems does about it and what is left
for the user to do.  :func:`report` adds each one's status for ``dmitems
doctor``; it probes the installed packages (see
:func:`dmitems.db.dm_dialect.upstream_defects`) and changes nothing.

Status words:

* ``fixed``: present in the installed packages; dmitems' dialect overrides it;
* ``absent``: not in the installed packages (an override that is left can go);
* ``avoided``: present; dmitems never takes the path that breaks;
* ``advice``: a matter of the environment, or of an application that embeds
  dmitems, that dmitems cannot change from inside (``detail`` says what to do);
* ``present``: present and not worked around: a problem.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("dmitems.dm")

FIXED = "fixed"
ABSENT = "absent"
AVOIDED = "avoided"
ADVICE = "advice"
PRESENT = "present"
PROBLEM_STATUSES = frozenset({PRESENT})


@dataclass(frozen=True)
class Defect:
    key: str
    title: str
    symptom: str
    remedy: str  # what dmitems does
    user_action: str = "nothing"  # what a user of dmitems must do
    present: bool | None = None
    status: str = ABSENT
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


EMBEDDED_EXECUTOR = (
    "an application that runs dmitems' app or engine in its own event loop calls "
    "loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(n)) itself before the "
    "first connection, with n = pool_size + max_overflow + max(4, a quarter of that)"
)

DEFECTS: tuple[Defect, ...] = (
    Defect("sqlalchemy-2.1", "dmSQLAlchemy imports sqlalchemy.util.await_fallback",
           "with SQLAlchemy 2.1 the DM dialect cannot load (ImportError)",
           "pins sqlalchemy>=2.0,<2.1",
           "keep SQLAlchemy below 2.1 in the same environment"),
    Defect("async-timeout-undeclared", "dmAsync imports async_timeout without declaring it",
           "ModuleNotFoundError: async_timeout on the first dm+dmAsync connect",
           "depends on async-timeout itself"),
    Defect("slots-shadowing", "__slots__ shadowed by class attributes _cursor/_connection",
           "every dm+dmAsync connect fails: \"'AsyncAdapt_dmasync_connection' object attribute "
           "'_connection' is read-only\"",
           "its dm+dmAsync dialect's connection and cursor classes put SQLAlchemy's slots back"),
    Defect("blocking-connect", "login, setup queries and logout run on the event loop thread",
           "the whole server freezes for every new connection (1 s on a refused port, a full "
           "login handshake otherwise); overflow connections reopen on the loop again and again",
           "its dialect logs in, runs SELECT MODE$ / SET_SESSION_IDENTITY_CHECK and logs out "
           "in a worker thread",
           "prefer a fixed pool (max_overflow = 0); serve warms it at start (dm.warm_pool)"),
    Defect("fetch-on-loop",
           "cursor execute returns an un-awaited coroutine; fetch runs on the loop",
           "fetchone/fetchall of every result block the loop; callers that do not await execute "
           "silently send nothing",
           "its dialect's cursor runs execute and fetchall together in one worker-thread call"),
    Defect("small-executor", "worker threads come from the loop's default executor",
           "at most min(32, cpu+4) queries in flight (6 on 2 cores) whatever the pool allows: "
           "requests queue while connections sit idle",
           "sizes the default executor of the event loops dmitems owns (serve, bench, every "
           "other command) to pool capacity + a margin (dm.executor_threads overrides)",
           EMBEDDED_EXECUTOR),
    Defect("dead-pre-ping", "pool_pre_ping does nothing",
           "a warning that coroutine 'Cursor.execute' was never awaited; stale connections are "
           "handed out and the first query fails",
           "its dialect's cursor executes at once, so the pre-ping's SELECT 1 FROM DUAL is sent"),
    Defect("executemany-returning", "bulk insert with RETURNING loses the driver's result",
           "TypeError: 'NoneType' object is not subscriptable on add_all() of 2+ objects or "
           "insert().returning() with many rows",
           "its dialect turns executemany RETURNING off: bulk inserts run without RETURNING, "
           "and bulk_create falls back to one insert per row in the same transaction",
           "do not call insert().returning() with many rows on DM"),
    Defect("executemany-appends-returning", "async executemany appends RETURNING pk INTO ?",
           "every bulk INSERT carries an out-bind per row whose values are thrown away",
           "its dialect sends a bulk INSERT as written"),
    Defect("returning-into-on-loop", "INSERT ... RETURNING ... INTO runs on the loop thread",
           "each ORM insert that fetches its key blocks the loop for a round trip",
           "never emits RETURNING ... INTO: a create is INSERT + rowid lookup + SELECT",
           "in your own code on DM, insert without .returning()"),
    Defect("dialect-kwargs", "DMDialect_dmAsync passes its keyword arguments positionally",
           "arraysize and encoding_errors given to create_engine land in the wrong slots",
           "its dialect passes them on by keyword; dmitems sets driver options in connect_args"),
    Defect("login-timeout", "login_timeout=5 (the driver default) fails intermittently",
           "sporadic -70019 on fresh connections; login_timeout=0 hangs for 40 s and more",
           "connect_args login_timeout=30 (dm.login_timeout) and local_code=1 (UTF-8)",
           "keep dm.login_timeout at 10 s or more"),
    Defect("encryption-module", "error -70089: encryption module failed to load",
           "every connect to a server that encrypts logins fails with -70089",
           "names the fix in the error message and in doctor",
           "put the dmPython wheel's dmssl folder on LD_LIBRARY_PATH before starting Python"),
    Defect("identity", "IDENTITY only for Identity() or autoincrement=True",
           "inserts fail on NOT NULL for a plain integer primary key",
           "declares the items primary key with Identity()"),
    Defect("text-is-lob", "Text compiles to TEXT, a large-object type",
           "slow LOB round trips for short strings", "uses String(n) only"),
    Defect("reserved-words", "reserved words are quoted in lowercase (case-sensitive)",
           "columns named comment/level/size/user/ref become case-sensitive identifiers",
           "uses no reserved word as a column name"),
    Defect("boolean-is", "Booleans compile to SMALLINT; .is_(True) compiles to IS 1",
           "a syntax error from DM", "has no boolean column"),
    Defect("timezone-dropped", "DateTime(timezone=True) drops the zone",
           "timestamps come back naive, in the server's time zone",
           "created_at/updated_at use the server's CURRENT_TIMESTAMP, labelled UTC",
           "run the DM server in UTC (as the SQLite and PostgreSQL backends store UTC)"),
    Defect("length-in-char", "LENGTH_IN_CHAR=0 limits VARCHAR2(n CHAR) binds to n bytes",
           "error -6108 for a 255-character Chinese name (765 bytes in UTF-8)",
           "init-db reads LENGTH_IN_CHAR and, when 0, sizes the columns in bytes (4 per "
           "character); -6108/-6169 become a one-line error quoting the byte limit",
           "run init-db (or init-db --drop) on such a database rather than your own DDL"),
)

# Defects dmitems' dialect overrides (their presence is probed in the installed packages).
OVERRIDDEN = frozenset(
    {"slots-shadowing", "blocking-connect", "fetch-on-loop", "dead-pre-ping",
     "executemany-returning", "executemany-appends-returning", "dialect-kwargs"}
)
# Defects dmitems steers clear of, whatever the installed packages do.
STEERED_CLEAR = frozenset(
    {"identity", "text-is-lob", "reserved-words", "boolean-is", "login-timeout",
     "length-in-char", "returning-into-on-loop"}
)


def report() -> list[Defect]:
    """Every known defect with its status in this installation (probes only; changes nothing)."""
    import sqlalchemy

    status: dict[str, tuple[bool | None, str, str]] = {
        key: (True, AVOIDED, "") for key in STEERED_CLEAR
    }
    too_new = not hasattr(sqlalchemy.util, "await_fallback")
    status["sqlalchemy-2.1"] = (too_new, PRESENT if too_new else ABSENT,
                                f"sqlalchemy {sqlalchemy.__version__}")
    status["async-timeout-undeclared"] = _async_timeout_status()
    status["encryption-module"] = _encryption_status()
    status["timezone-dropped"] = (True, ADVICE, "run the DM server in UTC")
    status["small-executor"] = (True, ADVICE, EMBEDDED_EXECUTOR)
    status.update(_overridden_status())
    reserved = _reserved_column_names()
    if reserved:
        status["reserved-words"] = (True, PRESENT, "reserved column names: " + ", ".join(reserved))
    return [
        replace(defect, present=status[defect.key][0], status=status[defect.key][1],
                detail=status[defect.key][2])
        for defect in DEFECTS
    ]


def _overridden_status() -> dict[str, tuple[bool | None, str, str]]:
    try:
        from dmitems.db.dm_dialect import upstream_defects

        found = upstream_defects()
    except Exception as exc:  # noqa: BLE001 - DM packages missing or unloadable
        log.debug("DM packages not importable: %s", exc)
        return {key: (None, ABSENT, "DM packages not installed") for key in OVERRIDDEN}
    return {
        key: (True, FIXED, "") if found[key]
        else (False, ABSENT, "fixed upstream: dmitems' override can go")
        for key in OVERRIDDEN
    }


def _async_timeout_status() -> tuple[bool | None, str, str]:
    try:
        requires = importlib.metadata.requires("dmAsync") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    declared = any(r.lower().replace("_", "-").startswith("async-timeout") for r in requires)
    installed = importlib.util.find_spec("async_timeout") is not None
    if declared:
        return False, ABSENT, ""
    return True, AVOIDED if installed else PRESENT, (
        "async_timeout installed" if installed else "async_timeout missing"
    )


def _encryption_status() -> tuple[bool | None, str, str]:
    spec = importlib.util.find_spec("dmPython")
    folder = Path(spec.origin).parent / "dmssl" if spec and spec.origin else None
    if folder is None or not folder.is_dir():
        return None, ABSENT, ""
    if str(folder) in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        return None, ABSENT, ""
    return None, ADVICE, f"export LD_LIBRARY_PATH={folder}:$LD_LIBRARY_PATH"


def _reserved_column_names() -> list[str]:
    try:
        from dmSQLAlchemy.base import DMDialect
    except Exception:  # noqa: BLE001 - no DM packages: nothing to compare with
        return []
    from dmitems.models import items

    reserved = set(DMDialect().identifier_preparer.reserved_words)
    return sorted(column.name for column in items.columns if column.name.lower() in reserved)

"""Storage URLs: checked before anything connects, shown without passwords, and what they hold.

Only SQLAlchemy here (no Optuna): a URL is checked, and a database's kind read, without creating a
file or a table, so bad input is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

from nasengine.errors import NasError, first_line

DEFAULT_STORAGE = "sqlite:///nasengine.db"



def display_url(url: str) -> str:
    """The URL with any password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url



def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other databases)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    return Path(u.database) if u.database else None



_DRIVER_PACKAGES = {"psycopg": "psycopg", "psycopg2": "psycopg2", "MySQLdb": "mysqlclient", "pymysql": "pymysql"}



def default_artifact_dir(url: str) -> Path:
    """Where trial artifacts (cell diagrams) go: ``nasengine-artifacts/`` beside a SQLite file, else in
    the working directory."""
    path = sqlite_path(url)
    return (path.parent if path is not None else Path(".")) / "nasengine-artifacts"



def check_storage_url(url: str, must_exist: bool = False) -> str:
    """Check a storage URL without connecting; returns the URL SQLAlchemy should open (a bare
    ``postgresql://`` names whichever of psycopg / psycopg2 is installed). NasError for a malformed URL,
    an unknown database kind, a missing driver, an in-memory or unreachable SQLite path, or
    (``must_exist``) a missing SQLite file."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if not isinstance(url, str) or not url.strip():
        raise NasError("the storage URL is empty (e.g. sqlite:///nasengine.db)")
    try:
        u = make_url(url)
    except ArgumentError:
        hint = f"; for a file try sqlite:///{url}" if "://" not in url else ""
        raise NasError(f"bad storage URL {url!r}: expected e.g. sqlite:///nasengine.db or "
                       f"postgresql://user@host/db{hint}") from None
    try:
        dialect = u.get_dialect()
    except NoSuchModuleError:
        raise NasError(f"bad storage URL {display_url(url)!r}: unknown database kind {u.drivername!r} "
                       "(use sqlite, postgresql or mysql)") from None
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            raise NasError("an in-memory SQLite storage would vanish with the process; name a file, "
                           "e.g. sqlite:///nasengine.db")
        path = Path(u.database)
        if path.is_dir():
            raise NasError(f"storage {url!r} names a directory, not a database file")
        if not path.parent.is_dir():
            raise NasError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
        if must_exist and not path.is_file():
            raise NasError(f"storage {url}: database file {str(path)!r} does not exist")
        return url
    try:
        dialect.import_dbapi()
    except ImportError as e:
        if u.drivername == "postgresql":  # no driver named: take psycopg2 when psycopg (3) is missing
            try:
                import psycopg2  # noqa: F401
            except ImportError:
                pass
            else:
                return u.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        package = _DRIVER_PACKAGES.get(e.name or "", e.name or "its driver")
        if u.drivername == "postgresql":
            package = "psycopg2 (or psycopg)"
        extra = ": pip install 'nasengine[postgres]'" if u.get_backend_name() == "postgresql" else ""
        raise NasError(f"storage {display_url(url)} needs the database driver {package}, which is not "
                       f"installed{extra}") from None
    return url



def storage_state(url: str) -> str:
    """``"missing"`` (no SQLite file yet), ``"empty"`` (a database without tables), ``"optuna"`` (Optuna's
    tables) or ``"foreign"`` (another kind of database). Reads only; NasError when it cannot be read."""
    import sqlalchemy
    import sqlalchemy.exc

    engine_url = check_storage_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return "missing"
    if path is not None and path.stat().st_size == 0:
        return "empty"
    try:
        engine = sqlalchemy.create_engine(engine_url)
        try:
            names = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except sqlalchemy.exc.DBAPIError as e:
        if path is not None and "not a database" in str(e.orig):  # a file SQLite cannot read: not a database at all
            return "foreign"
        raise NasError(f"cannot open storage {display_url(url)}: {first_line(e.orig or e)}") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as e:
        raise NasError(f"cannot open storage {display_url(url)}: {first_line(e)}") from None
    if {"studies", "trials", "version_info"} <= names:
        return "optuna"
    return "foreign" if names else "empty"


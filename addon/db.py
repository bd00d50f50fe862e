"""Engine, the per-request session, and the declarative base."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, Response, current_app, g
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# A fixed naming convention keeps constraint names identical on SQLite and
# PostgreSQL, so Alembic migrations can refer to them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys on and its folder created."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL syncs at checkpoints rather than on every commit: a crash of
            # the process loses nothing, and a writer holds the lock for microseconds, not
            # for an fsync, so concurrent requests' small writes do not queue behind disks.
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Reads are most of the work: map the file instead of copying pages through
            # read() calls, and keep more of the hot B-tree pages per connection.
            cursor.execute("PRAGMA mmap_size=268435456")
            cursor.execute("PRAGMA cache_size=-32768")
            cursor.close()

    return engine


def init_app(app: Flask) -> None:
    """Attach the engine and session factory, and the one commit/rollback point."""
    if "addon.sessionmaker" not in app.extensions:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["addon.engine"] = engine
        app.extensions["addon.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)

    @app.after_request
    def _finish_transaction(response: Response) -> Response:
        # The single place a request's work is committed: services only flush.
        # Anything but a success rolls back, so a refused request changes nothing.
        # Deferred work (addon.deferred) starts only once the request's own writes are in.
        from addon.deferred import discard_deferred, run_deferred

        session: Session | None = g.pop("db_session", None)
        succeeded = response.status_code < 400 and not g.get("db_rollback", False)
        if session is not None:
            try:
                if succeeded:
                    session.commit()
                else:
                    session.rollback()
            except BaseException:
                discard_deferred()
                raise
            finally:
                session.close()
        if succeeded:
            run_deferred(app)
        else:
            discard_deferred()
        return response

    @app.teardown_request
    def _discard_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def get_session() -> Session:
    """The session of the current request, created on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["addon.sessionmaker"]()
    session: Session = g.db_session
    return session


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """A session outside requests (CLI commands): commit on success, else roll back."""
    session: Session = app.extensions["addon.sessionmaker"]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

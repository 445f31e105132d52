"""The floor of the stack the product brief fixes: how many v1-shaped POSTs a second this machine
accepts when the handler does only what the design requires of every write, and nothing of ours.

    python -m bench.floor [--processes 3] [--seconds 10]

A FastAPI app served as ours is (uvicorn, httptools, uvloop, ``--processes`` workers) answers
``POST /api/v1/records`` under the same wrk load as ``make bench``'s ingest at saturation, in
four layers, each measured on its own:

- ``http``: the body parsed into a pydantic model, the bearer key compared in memory, a 202
  JSON answer: the ceiling of FastAPI + uvicorn here;
- ``db``: and the two round trips the design requires before the 202 (docs/architecture.md):
  the tracker's row and ``received`` step in one autocommitted statement, then one planning
  transaction (the RRset locked or inserted, its change, the status and steps) and its COMMIT,
  with psycopg2 on a database of its own; no rule, no ORM;
- ``queue``: and the message published to RabbitMQ with a publisher confirm, through
  Dramatiq's RabbitmqBroker, as service/core/dispatch.py does;
- ``grouped``: ``queue``, with the writes one process holds at once sharing the opening
  statement, one transaction (a SAVEPOINT each) and its COMMIT, as service/requests/groups.py does.

Nothing reads the queue and no worker runs, so every core is the API's and PostgreSQL's: the
figures bound from above what Hostmaster's ingest at saturation can reach on this machine with
this stack and this design. ``make bench`` runs it last, on the same machine as every other
figure (``floor_*_per_s`` in bench/results/latest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
from pydantic import BaseModel, Field

from bench.load import saturate
from bench.stack import free_port, say

DATABASE = "hostmaster_floor"
KEY = "floor-key"
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = """
CREATE TABLE request (id uuid PRIMARY KEY, client text NOT NULL, operation text NOT NULL,
    payload jsonb NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE request_event (id bigserial PRIMARY KEY, request_id uuid NOT NULL REFERENCES request,
    step text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE rrset (id bigserial PRIMARY KEY, zone text NOT NULL, name text NOT NULL, type text NOT NULL,
    ttl integer NOT NULL, "values" jsonb NOT NULL, version integer NOT NULL DEFAULT 1, UNIQUE (zone, name, type));
CREATE TABLE request_change (id bigserial PRIMARY KEY, request_id uuid NOT NULL REFERENCES request,
    rrset_id bigint NOT NULL REFERENCES rrset, version integer NOT NULL);
"""
OPEN = """
WITH opened AS (INSERT INTO request (id, client, operation, payload, status)
                VALUES (%s, %s, 'record.create', %s, 'received') RETURNING id)
INSERT INTO request_event (request_id, step) SELECT id, 'received' FROM opened
"""
LOCK = "SELECT id, version FROM rrset WHERE zone = %s AND name = %s AND type = %s FOR UPDATE"
INSERT_RRSET = 'INSERT INTO rrset (zone, name, type, ttl, "values") VALUES (%s, %s, %s, %s, %s) RETURNING id'
INSERT_CHANGE = "INSERT INTO request_change (request_id, rrset_id, version) VALUES (%s, %s, 1)"
OPEN_MANY = """
WITH opened AS (INSERT INTO request (id, client, operation, payload, status)
                SELECT id, 'floor', 'record.create', payload, 'received'
                FROM unnest(%s::uuid[], %s::jsonb[]) AS asked (id, payload) RETURNING id)
INSERT INTO request_event (request_id, step) SELECT id, 'received' FROM opened
"""
QUEUED_MANY = """
WITH moved AS (UPDATE request SET status = 'queued' WHERE id = ANY(%s::uuid[]) RETURNING id)
INSERT INTO request_event (request_id, step) SELECT id, step FROM moved, unnest(ARRAY['validated', 'queued']) AS step
"""
QUEUED = """
WITH moved AS (UPDATE request SET status = 'queued' WHERE id = %s RETURNING id)
INSERT INTO request_event (request_id, step) SELECT id, step FROM moved, unnest(ARRAY['validated', 'queued']) AS step
"""


class RecordIn(BaseModel):
    name: str = Field(max_length=253)
    type: str
    values: list[str] = Field(min_length=1, max_length=100)
    ttl: int = Field(default=300, ge=1)


def _dsn(database: str) -> str:
    return f"host=127.0.0.1 port=5432 user={os.environ.get('PG_USER', 'postgres')} dbname={database}"


def make_app(layer: str):  # type: ignore[no-untyped-def]  # pragma: no cover - runs in uvicorn
    """The app for one layer (``FLOOR_LAYER``): see the module's docstring."""
    from fastapi import FastAPI, Header, HTTPException
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse
    from psycopg2.pool import ThreadedConnectionPool

    app = FastAPI()
    pool = ThreadedConnectionPool(1, 40, _dsn(DATABASE)) if layer != "http" else None
    actor = None
    if layer in ("queue", "grouped"):
        import dramatiq
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url="amqp://guest:guest@127.0.0.1:5672/%2F", confirm_delivery=True)
        dramatiq.set_broker(broker)

        def apply(request_id: str) -> None:  # never run: nothing reads the queue
            pass

        actor = dramatiq.actor(actor_name="floor_apply", queue_name="floor")(apply)

    def store(request_id: str, record: RecordIn) -> None:
        assert pool is not None
        connection = pool.getconn()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(OPEN, (request_id, "floor", json.dumps(record.model_dump())))
            connection.autocommit = False
            with connection.cursor() as cursor:
                zone = record.name.split(".", 1)[1]
                cursor.execute(LOCK, (zone, record.name, record.type))
                cursor.execute(INSERT_RRSET, (zone, record.name, record.type, record.ttl, json.dumps(record.values)))
                (rrset_id,) = cursor.fetchone()
                cursor.execute(INSERT_CHANGE, (request_id, rrset_id))
                cursor.execute(QUEUED, (request_id,))
            connection.commit()
        finally:
            pool.putconn(connection)
        if actor is not None:
            actor.send(request_id)

    def store_group(group: list[tuple[str, RecordIn]]) -> None:
        """``store`` for every write waiting at once: one opening, one transaction, a savepoint each."""
        assert pool is not None
        ids = [request_id for request_id, _ in group]
        connection = pool.getconn()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(OPEN_MANY, (ids, [json.dumps(record.model_dump()) for _, record in group]))
            connection.autocommit = False
            with connection.cursor() as cursor:
                for request_id, record in group:
                    zone = record.name.split(".", 1)[1]
                    cursor.execute("SAVEPOINT write")
                    cursor.execute(LOCK, (zone, record.name, record.type))
                    values = json.dumps(record.values)
                    cursor.execute(INSERT_RRSET, (zone, record.name, record.type, record.ttl, values))
                    (rrset_id,) = cursor.fetchone()
                    cursor.execute(INSERT_CHANGE, (request_id, rrset_id))
                    cursor.execute("RELEASE SAVEPOINT write")
                cursor.execute(QUEUED_MANY, (ids,))
            connection.commit()
        finally:
            pool.putconn(connection)
        assert actor is not None
        for request_id in ids:
            actor.send(request_id)

    waiting: list[tuple[str, RecordIn, asyncio.Future[None]]] = []
    flushing: list[bool] = [False]

    async def flush() -> None:
        flushing[0] = True
        try:
            while waiting:
                group = waiting[:]
                waiting.clear()
                try:
                    await run_in_threadpool(store_group, [(request_id, record) for request_id, record, _ in group])
                except Exception as exc:  # every write of the group answers it
                    for *_, future in group:
                        future.set_exception(exc)
                else:
                    for *_, future in group:
                        future.set_result(None)
        finally:
            flushing[0] = False

    async def accept(request_id: str, record: RecordIn) -> None:
        future = asyncio.get_running_loop().create_future()
        waiting.append((request_id, record, future))
        if not flushing[0]:
            asyncio.get_running_loop().create_task(flush())
        await future

    @app.post("/api/v1/records", status_code=202)
    async def create(record: RecordIn, authorization: str = Header()) -> JSONResponse:
        if authorization != f"Bearer {KEY}":
            raise HTTPException(401)
        request_id = str(uuid.uuid4())
        if layer == "grouped":
            await accept(request_id, record)
        elif pool is not None:
            await run_in_threadpool(store, request_id, record)
        return JSONResponse(
            {"request_id": request_id, "status": "queued", "status_url": f"/api/v1/requests/{request_id}"},
            status_code=202,
        )

    return app


def _database() -> None:
    _drop_database()
    connection = psycopg2.connect(_dsn("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {DATABASE}")
    connection.close()
    connection = psycopg2.connect(_dsn(DATABASE))
    with connection, connection.cursor() as cursor:
        cursor.execute(SCHEMA)
    connection.close()


def _drop_database() -> None:
    connection = psycopg2.connect(_dsn("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    connection.close()


def _measure(layer: str, processes: int, seconds: int) -> float:
    _database()
    port = free_port()
    env = {**os.environ, "FLOOR_LAYER": layer, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor:app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/records"
        deadline = time.monotonic() + 30
        while True:  # ready when every process answers (a 405 for GET is an answer)
            try:
                import urllib.request

                urllib.request.urlopen(url, timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise FloorError(f"the floor app ({layer}) did not start") from None
                time.sleep(0.2)
        time.sleep(1.0)
        result = saturate(url, KEY, f"f{uuid.uuid4().hex[:6]}", seconds=seconds, connections=32)
        if result.errors:
            raise FloorError(f"the floor app ({layer}) answered {result.errors} errors")
        return result.requests_per_s
    finally:
        server.terminate()
        server.wait(timeout=30)
        _drop_database()


def app():  # type: ignore[no-untyped-def]  # pragma: no cover - uvicorn's --factory
    return make_app(os.environ["FLOOR_LAYER"])


LAYERS = ("http", "db", "queue", "grouped")


class FloorError(RuntimeError):
    """A layer could not be measured."""


def measure(processes: int, seconds: int) -> dict[str, float]:
    """Accepted POSTs a second of every layer, each on a database and server of its own."""
    figures = {}
    try:
        for layer in LAYERS:
            say(f"floor: {layer}, {processes} processes, wrk {seconds} s")
            figures[layer] = round(_measure(layer, processes, seconds), 1)
            say(f"floor: {layer}: {figures[layer]}/s")
    finally:
        _drop_queues()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps({"processes": args.processes, "accepted_per_s": measure(args.processes, args.seconds)}))
    return 0


def _drop_queues() -> None:
    """The messages the queue layers published, and their queues (nothing ever read them)."""
    import pika

    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672, socket_timeout=10))
    try:
        channel = connection.channel()
        for queue in ("floor", "floor.DQ", "floor.XQ"):
            channel.queue_delete(queue)
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())

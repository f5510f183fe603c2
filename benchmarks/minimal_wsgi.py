"""The lookup ceiling: the smallest WSGI app that does the same indexed lookup with psycopg.

Served by gunicorn with deploy/gunicorn.conf.py, like the registry, so the ratio measures what
Django, DRF, authentication and the routing answer cost on top of the database round trip.
"""

import json
import os

import psycopg

_connection = None


def application(environ, start_response):
    global _connection
    if _connection is None:
        _connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    number = environ["PATH_INFO"].rsplit("/", 1)[-1]
    row = _connection.execute(
        "SELECT number, provider_id::text, status FROM registry_vault WHERE number = %s",
        (number,),
    ).fetchone()
    if row is None:
        body, status = b'{"code":"vault_not_found"}', "404 Not Found"
    else:
        answer = {"number": row[0], "provider": row[1], "status": row[2]}
        body, status = json.dumps(answer).encode(), "200 OK"
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]

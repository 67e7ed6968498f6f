"""Exit 0 when the PostgreSQL server of DATABASE_URL (argv[1]) accepts a connection."""

import sys

import psycopg

url = sys.argv[1]
# Ask the server, not the test database, which pytest-django creates itself.
server_url = url.rsplit("/", 1)[0] + "/postgres"
try:
    psycopg.connect(server_url, connect_timeout=3).close()
except psycopg.OperationalError as exc:
    print(f"PostgreSQL unreachable: {exc}".strip(), file=sys.stderr)
    sys.exit(1)

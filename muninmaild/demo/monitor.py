"""Run the monitoring SQL on a database file, as `make demo` shows at its end."""

from __future__ import annotations

import sqlite3
import sys

QUERIES = (
    "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status",
    "SELECT subject, processing_status, created_at, updated_at FROM emails "
    "ORDER BY updated_at DESC LIMIT 10",
)


def main(path: str) -> None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        for query in QUERIES:
            print(f"\n{query};")
            for row in db.execute(query):
                print("  " + " | ".join(str(v) for v in row))


if __name__ == "__main__":
    main(sys.argv[1])

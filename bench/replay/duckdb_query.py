#!/usr/bin/env python3
"""The baseline of the replay benchmark: DuckDB computing per-line hourly international charge sums
straight from the CDR CSV (what stage 1 of phone.suspend-line-on-surge aggregates), timed from
opening the CSV to having every result row in Python. Prints one JSON object.

International = called_number dialled with Japan's international prefix 010, or E.164 `+` other
than +81. Times are parsed as timestamps with offset and truncated to the hour in Japan time.
Rows DuckDB can't parse are skipped (ignore_errors), as mamori skips them.
"""

import argparse
import json
import time

import duckdb

QUERY = """
SELECT line_id,
       date_trunc('hour', start_time) AS hour,
       sum(charge_jpy) AS international_charge_jpy,
       count(*) AS calls
FROM read_csv(?, header = true, ignore_errors = true,
              columns = {'call_id': 'VARCHAR', 'start_time': 'TIMESTAMPTZ', 'end_time': 'TIMESTAMPTZ',
                         'line_id': 'VARCHAR', 'calling_number': 'VARCHAR', 'called_number': 'VARCHAR',
                         'source_ip': 'VARCHAR', 'charge_jpy': 'BIGINT'})
WHERE called_number LIKE '010%' OR (called_number LIKE '+%' AND called_number NOT LIKE '+81%')
GROUP BY ALL
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    con = duckdb.connect()
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute("SET TimeZone = 'Asia/Tokyo'")
    began = time.perf_counter()
    rows = con.execute(QUERY, [args.csv]).fetchall()
    secs = time.perf_counter() - began
    total = sum(r[2] for r in rows)
    calls = sum(r[3] for r in rows)
    print(json.dumps({"seconds": secs, "groups": len(rows), "international_calls": calls,
                      "international_charge_jpy": total, "duckdb": duckdb.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()

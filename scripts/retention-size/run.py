#!/usr/bin/env python3
"""Shows the database staying the same size under steady load once retention runs.

Starts `waybill serve` on a fresh SQLite file with retention at short ages (events and
deliveries kept 2 s, a sweep every second), subscribes a webhook to a local receiver that
answers 200, creates `--orders` orders with a fulfillment each, then sends rounds of
`--updates` shipment-status updates spread over those orders (steady load: events,
deliveries and attempts keep coming, the orders stay the same). After each round it waits for
the deliveries and a sweep and prints the database's pages in use, its files' size (database and WAL) and the
history's row counts. With retention they level off; with `--no-retention` they grow with
every round.

    cargo build -p waybill
    scripts/retention-size/run.py [--rounds 4] [--orders 100] [--updates 2000] [--no-retention]

Bounded and loopback only: one server, one receiver, `orders + rounds × updates` writes.

Measured 2026-12-07 (debug build, busy 2-core machine, 100 orders, 3 rounds of 1,500 updates,
two webhooks; pages in use / files / outbox rows after each round):

    retention on:   1.8 / 2.6 / 3.2 MiB in use,  8.3 / 10.6 / 10.6 MiB files,  outbox 1 / 1 / 1
    retention off: 16.8 / 39.9 / 68.0 MiB in use, 20.8 / 43.9 / 72.3 MiB files, outbox 1,700 / 3,200 / 4,700

With retention the outbox, deliveries (one kept per order and webhook) and attempts stay
constant; what still grows (about 0.45 KiB per update) is each shipment's tracking history,
which is order data and is kept.
"""

import argparse
import http.client
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Receiver(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        Receiver.received += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def sizes(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    page_size, pages, free = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                              for p in ("page_size", "page_count", "freelist_count"))
    rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("outbox", "webhook_deliveries", "webhook_attempts", "orders")}
    conn.close()
    wal = db + "-wal"
    files = os.path.getsize(db) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
    return (pages - free) * page_size, files, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--updates", type=int, default=2000)
    ap.add_argument("--no-retention", action="store_true")
    ap.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "waybill"))
    args = ap.parse_args()

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="waybill-retention-")
    db = os.path.join(tmp, "waybill.db")
    age = "0" if args.no_retention else "2s"
    env = dict(os.environ, WAYBILL_DATABASE_URL=f"sqlite://{db}",
               WAYBILL_RETENTION_INTERVAL="1s", WAYBILL_RETENTION_OUTBOX_AGE=age,
               WAYBILL_RETENTION_DELIVERY_AGE=age, WAYBILL_WEBHOOK_ALLOW_PRIVATE="true",
               WAYBILL_RATE_LIMIT="0", WAYBILL_LOG="warn")
    created = json.loads(subprocess.check_output(
        [args.binary, "stores", "create", "--name", "retention"], env=env))
    store, secret = created["storeId"], created["apiSecret"]
    log = open(os.path.join(tmp, "serve.log"), "w")
    server = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:0",
                               "--log-format", "json"], env=dict(env, WAYBILL_LOG="info"),
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(200):
            time.sleep(0.05)
            with open(os.path.join(tmp, "serve.log")) as f:
                for line in f:
                    if "listening on http://" in line:
                        port = int(line.split("listening on http://")[1].split()[0]
                                   .split(":")[1].rstrip('",'))
            if port:
                break
        if not port:
            sys.exit("the server did not start; see " + os.path.join(tmp, "serve.log"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def call(path, body):
            conn.request("POST", path, json.dumps(body), {
                "authorization": f"Bearer {secret}", "content-type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 300:
                sys.exit(f"{path}: {resp.status} {data[:200]!r}")

        base = f"/v2.2/stores/{store}"
        for topic in ("order", "fulfillment"):
            call(f"{base}/webhooks", {"webhook": {
                "callback": {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook"},
                "topic": topic}})
        for o in range(args.orders):
            call(f"{base}/orders", {"orderId": f"o-{o}", "createdAt": "2026-01-01T00:00:00Z",
                                    "lineItems": [{"id": "l1", "productId": "p1", "title": "Tee",
                                                   "quantity": 1}]})
            call(f"{base}/orders/o-{o}/fulfillments", {
                "fulfillmentId": f"f-{o}", "lineItems": [{"id": "l1", "quantity": 1}],
                "tracking": {"carrier": "UPS", "code": "1Z999AA10123456784"}})
        print(f"retention {'off' if args.no_retention else 'on (2 s ages)'}; {args.orders} "
              f"orders, then rounds of {args.updates} shipment-status updates")
        print("round  updates  delivered  in-use KiB  files KiB  outbox  deliveries  attempts")
        n = 0
        for r in range(1, args.rounds + 1):
            for _ in range(args.updates):
                n += 1
                o = n % args.orders
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1767225600 + n))
                call(f"{base}/orders/o-{o}/fulfillments/f-{o}/shipment-status", {
                    "status": "in_transit", "message": f"scan {n}", "datetime": at})
            # Let every delivery finish, age past 2 s and be swept.
            seen = -1
            while Receiver.received != seen:
                seen = Receiver.received
                time.sleep(1)
            time.sleep(4)
            in_use, file_size, rows = sizes(db)
            print(f"{r:5}  {n:7}  {Receiver.received:9}  {in_use // 1024:10}  "
                  f"{file_size // 1024:9}  {rows['outbox']:6}  "
                  f"{rows['webhook_deliveries']:10}  {rows['webhook_attempts']:8}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        receiver.shutdown()


if __name__ == "__main__":
    main()

"""A flood of unknown bearer tokens, for ``test_token_flood.py`` (run as a script).

``python token_flood_client.py PORT CLIENTS one|forged|spread``: CLIENTS threads, each with
its own keep-alive connection, POST ``/api/halt`` with a fresh random token, over and over.
With ``one`` they all come from 127.0.0.1 (like an operator on the same machine); ``forged``
is the same with a random ``X-Forwarded-For`` on every request (the server must not believe
it); with ``spread`` each thread binds its own loopback source address (127.0.0.2,
127.0.0.3, ...), so the server sees CLIENTS different clients. Prints ``ready`` once every
thread has had an answer, then floods until its stdin closes, then prints the count of each
status as JSON.
"""

from __future__ import annotations

import http.client
import json
import secrets
import sys
import threading
from collections import Counter

BODY = b'{"reason": "flood"}'


def main() -> None:
    port, clients, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    stop = threading.Event()
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    answered = threading.Semaphore(0)

    def flood(index: int) -> None:
        spread = mode == "spread"
        source = (f"127.0.{index // 250}.{2 + index % 250}" if spread else "127.0.0.1", 0)
        local: Counter[str] = Counter()
        conn: http.client.HTTPConnection | None = None
        first = True
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", port, timeout=60, source_address=source
                    )
                token = secrets.token_urlsafe(32)
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                if mode == "forged":
                    forged = ".".join(str(secrets.randbelow(256)) for _ in range(4))
                    headers["X-Forwarded-For"] = forged
                conn.request("POST", "/api/halt", BODY, headers)
                response = conn.getresponse()
                response.read()
                local[str(response.status)] += 1
            except (OSError, http.client.HTTPException):
                local["error"] += 1
                if conn is not None:
                    conn.close()
                conn = None
            if first:
                first = False
                answered.release()
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for _ in threads:
        answered.acquire()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    print(json.dumps(dict(counts)), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Manifest GETs over keep-alive connections from THREADS threads until STOPFILE exists or
SECS pass; prints count, p50 and p99 in milliseconds. Usage: gc_load.py ADDR REPOS SECS THREADS STOPFILE"""
import http.client, os, sys, threading, time

addr, repos, secs, threads, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
host, port = addr.split(":")
lat, lock = [], threading.Lock()
end = time.time() + secs

def work(t):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    i, mine = t, []
    while time.time() < end and not os.path.exists(stop):
        r = (i * 2) % repos  # tagged repositories are the even ones
        t0 = time.perf_counter()
        c.request("GET", f"/v2/org{r % 100}/app{r}/manifests/latest",
                  headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        resp = c.getresponse(); resp.read()
        mine.append(time.perf_counter() - t0)
        assert resp.status == 200, resp.status
        i += threads
    with lock:
        lat.extend(mine)

ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
lat.sort()
if not lat:
    print("0 nan nan"); sys.exit(0)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(f"{len(lat)} {q(0.5):.2f} {q(0.99):.2f}")

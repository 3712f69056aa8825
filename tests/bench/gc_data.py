#!/usr/bin/env python3
"""Writes one registry's worth of tiny content twice, in berth-registry's layout and in the CNCF
registry's (docker/registry/v2/...): REPOS repositories, each with one tagged image (manifest,
config, LAYERS layers), and every second repository's manifest deleted (tag and revision gone),
so about half the blobs are garbage. Usage: gc_data.py BERTH_DIR CNCF_DIR REPOS LAYERS"""
import hashlib, json, os, sys

berth, cncf, repos, layers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
MT = "application/vnd.oci.image.manifest.v1+json"

def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def blob(data):
    h = hashlib.sha256(data).hexdigest()
    for root in (f"{berth}/blobs", f"{cncf}/docker/registry/v2/blobs"):
        put(f"{root}/sha256/{h[:2]}/{h}/data", data)
    return "sha256:" + h

def link(repo, rel, content_berth, content_cncf):
    put(f"{berth}/repositories/{repo}/{rel}", content_berth.encode())
    put(f"{cncf}/docker/registry/v2/repositories/{repo}/{rel}", content_cncf.encode())

for r in range(repos):
    repo = f"org{r % 100}/app{r}"
    descs = []
    for l in range(layers):
        d = blob(f"layer {r}/{l}".encode())
        link(repo, f"_layers/sha256/{d[7:]}/link", d, d)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(f"layer {r}/{l}")})
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "n": r}).encode()
    cd = blob(cfg)
    link(repo, f"_layers/sha256/{cd[7:]}/link", cd, cd)
    m = json.dumps({"schemaVersion": 2, "mediaType": MT,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                    "layers": descs}).encode()
    md = blob(m)
    link(repo, f"_layers/sha256/{md[7:]}/link", md, md)
    if r % 2 == 0:
        link(repo, f"_manifests/revisions/sha256/{md[7:]}/link", f"{md}\n{MT}", md)
        link(repo, "_manifests/tags/latest/current/link", md, md)
        link(repo, f"_manifests/tags/latest/index/sha256/{md[7:]}/link", md, md)
    else:
        # Deleted: the repository keeps its layer links, nothing references the blobs.
        os.makedirs(f"{berth}/repositories/{repo}/_manifests", exist_ok=True)
        os.makedirs(f"{cncf}/docker/registry/v2/repositories/{repo}/_manifests", exist_ok=True)

#!/usr/bin/env python3
"""Writes the seed corpus, a handful of valid inputs per target, to corpus/<target>/.

Standard library only, plus the `openssl` command to sign the `auth` seed tokens with the
test key in keys/ (they expire in 2100). Run from anywhere: ./make_corpus.py
"""
import base64
import hashlib
import json
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SHA256_EMPTY = "sha256:" + hashlib.sha256(b"").hexdigest()
SHA512_EMPTY = "sha512:" + hashlib.sha512(b"").hexdigest()
ISSUER, SERVICE = "berth-fuzz", "registry.fuzz"  # as in fuzz_targets/auth.rs


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_ints(sig):
    """(r, s) of a DER ECDSA signature."""
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = []
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        out.append(int.from_bytes(sig[i + 2 : i + 2 + n], "big"))
        i += 2 + n
    return out


def es256(header, claims):
    key = os.path.join(HERE, "keys", "token.key")
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                         capture_output=True, check=True).stdout
    r, s = der_ints(der)
    return signing_input.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def key_facts():
    """RFC 7638 thumbprint of the test key, and its certificate's DER in base64."""
    key = os.path.join(HERE, "keys", "token.key")
    spki = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                          capture_output=True, check=True).stdout
    point = spki[-65:]
    jwk = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (b64url(point[1:33]), b64url(point[33:]))
    kid = b64url(hashlib.sha256(jwk.encode()).digest())
    cert = subprocess.run(["openssl", "x509", "-in", os.path.join(HERE, "keys", "token.crt"), "-outform", "DER"],
                          capture_output=True, check=True).stdout
    return kid, base64.b64encode(cert).decode()


def manifest(media_type=None, **extra):
    m = {"schemaVersion": 2}
    if media_type:
        m["mediaType"] = media_type
    m.update(extra)
    return json.dumps(m, indent=2).encode()


def desc(media_type, size=0, digest=SHA256_EMPTY, **extra):
    d = {"mediaType": media_type, "digest": digest, "size": size}
    d.update(extra)
    return d


def seeds():
    oci_m = "application/vnd.oci.image.manifest.v1+json"
    oci_i = "application/vnd.oci.image.index.v1+json"
    dk_m = "application/vnd.docker.distribution.manifest.v2+json"
    dk_l = "application/vnd.docker.distribution.manifest.list.v2+json"
    config = desc("application/vnd.oci.image.config.v1+json", 2)
    layer = desc("application/vnd.oci.image.layer.v1.tar+gzip", 32)
    platform = {"architecture": "amd64", "os": "linux"}
    kid, cert = key_facts()
    exp = 4102444800  # 2100-01-01
    access = [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
    claims = {"iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": exp, "nbf": 1577836800,
              "iat": 1577836800, "jti": "1", "access": access}
    refresh = {"iss": ISSUER, "sub": "alice", "aud": SERVICE + "#refresh", "exp": exp,
               "iat": 1577836800, "jti": "2", "pwh": "0123456789abcdef"}
    return {
        "route": [
            b"GET\n/v2/",
            b"GET\n/v2/_catalog?n=10&last=a",
            b"GET\n/v2/library/busybox/tags/list?n=2",
            b"HEAD\n/v2/a/b/c/manifests/latest",
            b"PUT\n/v2/team/app/manifests/" + SHA256_EMPTY.encode() + b"?tag=v1&tag=v2",
            b"DELETE\n/v2/x/blobs/" + SHA512_EMPTY.encode(),
            b"GET\n/v2/x/blobs/blobs/sha256:ab",
            b"POST\n/v2/a/blobs/uploads/?mount=" + SHA256_EMPTY.encode() + b"&from=b/c",
            b"POST\n/v2/a/blobs/uploads/?digest=" + SHA256_EMPTY.encode(),
            b"PATCH\n/v2/a/blobs/uploads/0f2b6c3e-9d4a-4f0e-8c1b-2a3b4c5d6e7f",
            b"GET\n/v2/a/referrers/" + SHA256_EMPTY.encode() + b"?artifactType=application/x",
        ],
        "range": [struct.pack("<Q", size) + h for size, h in [
            (100, b"bytes=0-9"), (100, b"bytes=-10"), (100, b"bytes=10-"), (100, b"bytes=0-1,5-6"),
            (0, b"bytes=0-0"), (1000, b"0-999"), (1000, b"bytes 0-999/1000"), (1 << 40, b"bytes=5-9"),
        ]],
        "digest": [SHA256_EMPTY.encode(), SHA512_EMPTY.encode(),
                   b"sha384:" + hashlib.sha384(b"").hexdigest().encode(),
                   b"md5:d41d8cd98f00b204e9800998ecf8427e", b"sha256", b"sha512"],
        "reference": [b"latest", b"v1.2.3-rc_1", b"_x", b"library/busybox", b"a.b_c__d---e/f0",
                      SHA256_EMPTY.encode(), b"UPPER", b"localhost"],
        "client_reference": [b"busybox", b"busybox:1.36", b"docker.io/library/busybox:latest",
                             b"localhost:5000/a/b:v1", b"127.0.0.1:5000/x:y",
                             b"ghcr.io/org/app@" + SHA256_EMPTY.encode(),
                             b"index.docker.io/x", b"a/b:t@" + SHA256_EMPTY.encode(), b"Busybox"],
        "manifest": [
            b"\n" + manifest(oci_m, config=config, layers=[layer]),
            oci_m.encode() + b"\n" + manifest(config=config, layers=[layer], annotations={"a": "b"}),
            b"\n" + manifest(oci_m, artifactType="application/x", config=config, layers=[],
                             subject=desc(oci_m, 10)),
            oci_i.encode() + b"\n" + manifest(oci_i, manifests=[desc(oci_m, 10, platform=platform)]),
            dk_m.encode() + b"; charset=utf-8\n" + manifest(dk_m, config=desc("application/vnd.docker.container.image.v1+json", 2), layers=[desc("application/vnd.docker.image.rootfs.diff.tar.gzip", 32)]),
            dk_l.encode() + b"\n" + manifest(dk_l, manifests=[desc(dk_m, 10, platform=platform)]),
            b"application/vnd.docker.distribution.manifest.v1+prettyjws\n" + json.dumps({"schemaVersion": 1, "name": "x", "tag": "t"}).encode(),
        ],
        "auth": [
            b"repository:team/app:pull,push\nregistry:catalog:*\nrepository(plugin):x:pull",
            b"Basic " + base64.b64encode(b"alice:s3cret:with:colons"),
            b"Bearer abc.def.ghi",
            b'Bearer realm="https://r.example/auth/token",service="registry.fuzz",scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"',
            b'Basic realm="x", Bearer realm="https://a/t",service=s',
            b'bearer realm="a, \\"b\\"", basic realm=x',
            b"team/*\nteam/app",
            b"**/x\na/b/x",
            es256({"alg": "ES256", "typ": "JWT", "kid": kid}, claims).encode(),
            es256({"alg": "ES256", "typ": "JWT", "x5c": [cert]}, claims).encode(),
            es256({"alg": "ES256", "typ": "JWT", "kid": kid}, dict(claims, aud=[SERVICE, "other"])).encode(),
            es256({"alg": "ES256", "typ": "JWT", "kid": kid}, dict(claims, iss="someone-else")).encode(),
            es256({"alg": "ES256", "typ": "JWT", "kid": kid}, refresh).encode(),
            (b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(claims).encode()) + ".").encode(),
            (b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode()) + ".AAAA").encode(),
        ],
    }


def main():
    for target, inputs in seeds().items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for i, data in enumerate(inputs):
            with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
                f.write(data)
        print(f"{target}: {len(inputs)} seeds")


if __name__ == "__main__":
    main()

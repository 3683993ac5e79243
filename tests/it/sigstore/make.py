#!/usr/bin/env python3
"""A private sigstore for ferry's keyless tests, made with python3-cryptography, never ferry.

usage: make.py OUTDIR SPEC.json

It makes a Fulcio-style CA (a P-384 root and intermediate), a Rekor log key and a CT log key
(P-256), and writes OUTDIR/trusted_root*.json:
  trusted_root.json           the CA, the Rekor key and the CT log key (the good one)
  trusted_root_no_ct.json     the same without the CT log (SCTs are then not checked)
  trusted_root_other_ca.json  another CA only (the signing CA is not in it)
  trusted_root_expired_ca.json the CA with a validFor that ended before the signing time
  trusted_root_other_ct.json  the CA with another CT log key (the embedded SCT is not its)
  trusted_root_forged_ct.json another CT key under the real CT log's id (its SCT fails)
  trusted_root_forged_rekor.json another Rekor key under the real log's id (its SETs fail)

SPEC lists signatures to make, each {"digest": "sha256:…", "out": FILE, "kind": K, ...}:
  kind "bundle":  a cosign 3 sigstore bundle (v0.3, `cosign sign` with the new bundle format):
                  a DSSE envelope of an in-toto v1 statement, predicate
                  https://sigstore.dev/cosign/sign/v1, subject {"digest":{"sha256":…}}, signed by
                  a Fulcio-style leaf (SAN "identity", issuer "issuer", embedded SCT), with a
                  Rekor dsse v0.0.1 entry and its signed entry timestamp. "flip_set": true
                  corrupts one byte of the SET.
  kind "key":     the same bundle signed with the P-256 key in OUTDIR/cosign.key (written, with
                  cosign.pub, if absent), with a public-key hint and no certificate.
  kind "legacy":  a keyless `.sig` layer (cosign 2): OUT gets {"payload": simple-signing text,
                  "annotations": {signature, certificate, chain, bundle}}.
The signing time (Rekor's integratedTime) is a day ago; the leaf is valid for ten minutes
around it, as Fulcio's are, so a check at the wrong time fails.
"""

import base64
import datetime
import hashlib
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC).replace(microsecond=0)
SIGNED_AT = NOW - datetime.timedelta(days=1)
INTEGRATED = int(SIGNED_AT.timestamp())


def b64(data):
    return base64.b64encode(data).decode()


def canonical(value):
    # RFC 8785 for what is used here (ASCII strings, integers, objects): sorted keys, no spaces.
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def spki(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ca(name, days_before):
    root_key = ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                           x509.NameAttribute(NameOID.COMMON_NAME, name + " root")])
    start = NOW - datetime.timedelta(days=days_before)
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .sign(root_key, hashes.SHA384())
    )
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                            x509.NameAttribute(NameOID.COMMON_NAME, name + " intermediate")])
    inter = (
        x509.CertificateBuilder()
        .subject_name(inter_name).issuer_name(root_name)
        .public_key(inter_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(root_key, hashes.SHA384())
    )
    return {"root": root, "inter": inter, "inter_key": inter_key}


def der_utf8(text):
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


def der_octets(data):
    n = len(data)
    if n < 128:
        return bytes([0x04, n]) + data
    if n < 256:
        return bytes([0x04, 0x81, n]) + data
    return bytes([0x04, 0x82]) + struct.pack(">H", n) + data


def leaf(authority, ct_key, identity, issuer):
    """A Fulcio-style leaf with an embedded SCT (RFC 6962) by ct_key, and its private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    if identity.startswith(("https://", "http://")):
        san = x509.UniformResourceIdentifier(identity)
    else:
        san = x509.RFC822Name(identity)
    serial = x509.random_serial_number()

    def builder():
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(authority["inter"].subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(SIGNED_AT - datetime.timedelta(minutes=2))
            .not_valid_after(SIGNED_AT + datetime.timedelta(minutes=8))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(
                ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(
                ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), der_utf8(issuer)), critical=False)
        )

    inter_key = authority["inter_key"]
    precert = builder().sign(inter_key, hashes.SHA384())
    tbs = precert.tbs_certificate_bytes
    issuer_key_hash = hashlib.sha256(spki(inter_key)).digest()
    timestamp = INTEGRATED * 1000 - 5000
    signed = (b"\x00\x00" + struct.pack(">Q", timestamp) + b"\x00\x01" + issuer_key_hash
              + struct.pack(">I", len(tbs))[1:] + tbs + b"\x00\x00")
    sct_sig = sign(ct_key, signed)
    sct = (b"\x00" + hashlib.sha256(spki(ct_key)).digest() + struct.pack(">Q", timestamp)
           + b"\x00\x00" + b"\x04\x03" + struct.pack(">H", len(sct_sig)) + sct_sig)
    one = struct.pack(">H", len(sct)) + sct
    sct_list = struct.pack(">H", len(one)) + one
    cert = builder().add_extension(
        x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"),
                                   der_octets(sct_list)),
        critical=False,
    ).sign(inter_key, hashes.SHA384())
    return cert, key


def tlog_entry(rekor_key, body, index, flip_set):
    log_id = hashlib.sha256(spki(rekor_key)).digest()
    set_payload = {"body": b64(body), "integratedTime": INTEGRATED,
                   "logID": log_id.hex(), "logIndex": index}
    set_sig = bytearray(sign(rekor_key, canonical(set_payload)))
    if flip_set:
        set_sig[len(set_sig) // 2] ^= 0x01
    return log_id, bytes(set_sig), set_payload


def checkpoint(rekor_key, root_hash, size):
    origin = "rekor.sigstore.test - 1"
    note = "%s\n%d\n%s\n" % (origin, size, b64(root_hash))
    sig = sign(rekor_key, note.encode())
    key_hash = hashlib.sha256(spki(rekor_key)).digest()[:4]
    return note + "\n\u2014 %s %s\n" % (origin, b64(key_hash + sig))


def statement(digest):
    algorithm, hexdigest = digest.split(":", 1)
    # protojson's field order for an in-toto v1 Statement, as cosign 3 marshals it.
    return json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {algorithm: hexdigest}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }, separators=(",", ":")).encode()


def pae(payload_type, payload):
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload),
                                    payload)


def dsse_bundle(digest, signer_key, cert, rekor_key, index, flip_set, hint=None):
    payload_type = "application/vnd.in-toto+json"
    payload = statement(digest)
    sig = sign(signer_key, pae(payload_type, payload))
    envelope = {"payload": b64(payload), "payloadType": payload_type,
                "signatures": [{"sig": b64(sig)}]}
    verifier = pem(cert) if cert is not None else signer_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = canonical({
        "apiVersion": "0.0.1", "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256",
                             "value": hashlib.sha256(canonical(envelope)).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": b64(sig), "verifier": b64(verifier)}],
        },
    })
    log_id, set_sig, _ = tlog_entry(rekor_key, body, index, flip_set)
    leaf_hash = hashlib.sha256(b"\x00" + body).digest()
    entry = {
        "logIndex": str(index),
        "logId": {"keyId": b64(log_id)},
        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
        "integratedTime": str(INTEGRATED),
        "inclusionPromise": {"signedEntryTimestamp": b64(set_sig)},
        "inclusionProof": {
            "logIndex": "0", "rootHash": b64(leaf_hash), "treeSize": "1", "hashes": [],
            "checkpoint": {"envelope": checkpoint(rekor_key, leaf_hash, 1)},
        },
        "canonicalizedBody": b64(body),
    }
    if cert is not None:
        material = {"certificate": {"rawBytes": b64(cert.public_bytes(
            serialization.Encoding.DER))}, "tlogEntries": [entry]}
    else:
        material = {"publicKey": {"hint": hint}, "tlogEntries": [entry]}
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "dsseEnvelope": envelope,
    }, separators=(",", ":")).encode()


def legacy(digest, repository, signer_key, cert, authority, rekor_key, index, flip_set):
    payload = json.dumps({
        "critical": {"identity": {"docker-reference": "index.docker.io/" + repository},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None,
    }, separators=(",", ":")).encode()
    sig = sign(signer_key, payload)
    body = canonical({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {"data": {"hash": {"algorithm": "sha256",
                                   "value": hashlib.sha256(payload).hexdigest()}},
                 "signature": {"content": b64(sig), "publicKey": {"content": b64(pem(cert))}}},
    })
    _, set_sig, set_payload = tlog_entry(rekor_key, body, index, flip_set)
    return json.dumps({
        "payload": payload.decode(),
        "annotations": {
            "dev.cosignproject.cosign/signature": b64(sig),
            "dev.sigstore.cosign/certificate": pem(cert).decode(),
            "dev.sigstore.cosign/chain": (pem(authority["inter"]) + pem(authority["root"])).decode(),
            "dev.sigstore.cosign/bundle": json.dumps(
                {"SignedEntryTimestamp": b64(set_sig), "Payload": set_payload},
                separators=(",", ":")),
        },
    }).encode()


def log_entry(key, url, start):
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {"rawBytes": b64(spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                      "validFor": {"start": rfc3339(start)}},
        "logId": {"keyId": b64(hashlib.sha256(spki(key)).digest())},
    }


def authority_entry(authority, start, end=None):
    valid = {"start": rfc3339(start)}
    if end is not None:
        valid["end"] = rfc3339(end)
    return {
        "subject": {"organization": "ferry test", "commonName": "fulcio"},
        "uri": "https://fulcio.sigstore.test",
        "certChain": {"certificates": [
            {"rawBytes": b64(authority["inter"].public_bytes(serialization.Encoding.DER))},
            {"rawBytes": b64(authority["root"].public_bytes(serialization.Encoding.DER))},
        ]},
        "validFor": valid,
    }


def root(cas, tlogs, ctlogs):
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs,
        "certificateAuthorities": cas,
        "ctlogs": ctlogs,
        "timestampAuthorities": [],
    }, indent=2).encode()


def main():
    out_dir, spec_file = sys.argv[1], sys.argv[2]
    with open(spec_file) as f:
        spec = json.load(f)
    authority = ca("ferry test sigstore", 30)
    other = ca("someone else", 30)
    rekor_key = ec.generate_private_key(ec.SECP256R1())
    ct_key = ec.generate_private_key(ec.SECP256R1())
    other_ct = ec.generate_private_key(ec.SECP256R1())
    start = NOW - datetime.timedelta(days=30)
    tlogs = [log_entry(rekor_key, "https://rekor.sigstore.test", start)]
    ctlog = [log_entry(ct_key, "https://ctfe.sigstore.test", start)]
    roots = {
        "trusted_root.json": root([authority_entry(authority, start)], tlogs, ctlog),
        "trusted_root_no_ct.json": root([authority_entry(authority, start)], tlogs, []),
        "trusted_root_other_ca.json": root([authority_entry(other, start)], tlogs, ctlog),
        "trusted_root_expired_ca.json": root(
            [authority_entry(authority, start, SIGNED_AT - datetime.timedelta(hours=1))],
            tlogs, ctlog),
        "trusted_root_other_ct.json": root(
            [authority_entry(authority, start)], tlogs,
            [log_entry(other_ct, "https://other-ctfe.sigstore.test", start)]),
        # Another key under the real CT log's id: the SCT's signature must fail.
        "trusted_root_forged_ct.json": root(
            [authority_entry(authority, start)], tlogs,
            [dict(log_entry(other_ct, "https://forged-ctfe.sigstore.test", start),
                  logId=ctlog[0]["logId"])]),
        # Another key under the real Rekor log's id: every SET must fail.
        "trusted_root_forged_rekor.json": root(
            [authority_entry(authority, start)],
            [dict(log_entry(other_ct, "https://forged-rekor.sigstore.test", start),
                  logId=tlogs[0]["logId"])], ctlog),
    }
    for name, data in roots.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)

    key_file = os.path.join(out_dir, "cosign.key")
    if not os.path.exists(key_file):
        k = ec.generate_private_key(ec.SECP256R1())
        with open(key_file, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        with open(os.path.join(out_dir, "cosign.pub"), "wb") as f:
            f.write(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    with open(key_file, "rb") as f:
        cosign_key = serialization.load_pem_private_key(f.read(), None)

    for index, item in enumerate(spec["signatures"]):
        kind = item.get("kind", "bundle")
        flip = bool(item.get("flip_set"))
        identity = item.get("identity", "builder@example.test")
        issuer = item.get("issuer", "https://oidc.example.test")
        if kind == "key":
            data = dsse_bundle(item["digest"], cosign_key, None, rekor_key, 1000 + index, flip,
                               hint=b64(hashlib.sha256(spki(cosign_key)).digest()))
        else:
            cert, key = leaf(authority, ct_key, identity, issuer)
            if kind == "bundle":
                data = dsse_bundle(item["digest"], key, cert, rekor_key, 1000 + index, flip)
            elif kind == "legacy":
                data = legacy(item["digest"], item["repository"], key, cert, authority,
                              rekor_key, 1000 + index, flip)
            else:
                raise SystemExit("unknown kind " + kind)
        with open(item["out"], "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Manage keys on a KMIP server as its admin would, through PyKMIP's client.

    kmip_admin.py HOST PORT CERT KEY CA create          -> prints the new key's id
    kmip_admin.py HOST PORT CERT KEY CA revoke ID
    kmip_admin.py HOST PORT CERT KEY CA state ID        -> prints the key's state
    kmip_admin.py DATABASE reactivate ID

"create" makes a 256-bit AES key for encryption and decryption and
activates it.  "revoke" is how a KMIP administrator stops a key.  KMIP
has no way back from a revocation, so "reactivate" does what a KMS's own
console would: it sets the key's state to Active in the PyKMIP server's
store (its SQLite database), which the server reads on every request.
"""
import sqlite3
import sys

from kmip import enums
from kmip.pie import client


def main():
    if sys.argv[2] == "reactivate":
        db = sqlite3.connect(sys.argv[1])
        with db:
            db.execute("UPDATE crypto_objects SET state = 2 WHERE uid = ?", (int(sys.argv[3]),))
        return
    host, port, cert, key, ca, op = sys.argv[1:7]
    args = sys.argv[7:]
    c = client.ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key,
                               ca=ca, config_file="/dev/null",
                               kmip_version=enums.KMIPVersion.KMIP_1_4)
    with c:
        if op == "create":
            uid = c.create(enums.CryptographicAlgorithm.AES, 256,
                           cryptographic_usage_mask=[
                               enums.CryptographicUsageMask.ENCRYPT,
                               enums.CryptographicUsageMask.DECRYPT])
            c.activate(uid)
            print(uid)
        elif op == "revoke":
            c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, args[0])
        elif op == "state":
            attrs = c.get_attributes(args[0], ["State"])[1]
            print(attrs[0].attribute_value.value.name)
        else:
            sys.exit("unknown operation " + op)


if __name__ == "__main__":
    main()

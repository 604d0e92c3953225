#!/usr/bin/python3
"""Disable or enable an AES key on a PKCS#11 token, as an HSM admin would.

    hsm_key.py MODULE TOKEN_LABEL PIN KEY_LABEL disable|enable

Disabling clears the key's CKA_ENCRYPT and CKA_DECRYPT, so that the token
refuses to wrap or unwrap with it; enabling sets them again.  The key
itself never leaves the token.
"""
import sys

import PyKCS11


def main():
    module, token, pin, label, op = sys.argv[1:6]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = next(s for s in lib.getSlotList(tokenPresent=True)
                if lib.getTokenInfo(s).label.strip() == token)
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(pin)
    keys = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
                                (PyKCS11.CKA_LABEL, label)])
    if len(keys) != 1:
        sys.exit("expected one key labelled %s, found %d" % (label, len(keys)))
    value = PyKCS11.CK_TRUE if op == "enable" else PyKCS11.CK_FALSE
    session.setAttributeValue(keys[0], [(PyKCS11.CKA_ENCRYPT, value),
                                        (PyKCS11.CKA_DECRYPT, value)])
    session.logout()
    session.closeSession()


if __name__ == "__main__":
    main()

"""The workspace token signer: an EC P-256 key pair on disk, ES256 JWTs for token-auth services.

Envoy's ``jwt_authn`` verifies the tokens with the public key (``jwks()``), so the private key
never leaves the folder it lives in (file mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ISSUER = "modelport"
ALGORITHM = "ES256"
KEY_FILE = "token-signing-key.pem"


class TokenSigner:
    """Issues tokens for services; the key pair is created in ``folder`` on first use."""

    def __init__(self, folder: Path):
        self.key_path = Path(folder) / KEY_FILE
        self._key = _load_or_create(self.key_path)
        public_jwk: dict[str, Any] = ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self.kid = _thumbprint(public_jwk)
        self._jwk = {**public_jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def issue(self, service: str, ttl_s: int, now: float | None = None) -> tuple[str, int]:
        """A token for ``service`` valid ``ttl_s`` seconds; returns it and the epoch second to refresh it by."""
        if ttl_s <= 0:
            raise ValueError(f"token lifetime must be positive, got {ttl_s} s")
        issued = int(time.time() if now is None else now)
        claims = {"iss": ISSUER, "aud": service, "sub": service, "iat": issued, "exp": issued + ttl_s}
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, issued + ttl_s // 2

    def jwks(self) -> dict[str, Any]:
        """The public key set Envoy verifies tokens with."""
        return {"keys": [dict(self._jwk)]}


def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} is not an EC private key: delete it to create a new one")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile: use theirs
    except FileExistsError:
        return _load_or_create(path)
    finally:
        tmp.unlink()
    return key


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an EC public JWK (the key id)."""
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()

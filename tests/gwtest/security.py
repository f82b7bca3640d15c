"""Security helpers for the black-box tests: `[[users]]` tables with real argon2 hashes (made by
the binary under test, `gateway hash-password`), `[[authorization]]` tables, and TLS material
(`gateway gen-cert` for the server; openssl for a CA and client certificates).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from gwtest.gateway import check_binary


@functools.lru_cache(maxsize=None)
def hash_password(password: str) -> str:
    """The PHC string `gateway hash-password` prints for `password` (given on stdin)."""
    out = subprocess.run(
        [str(check_binary()), "hash-password"],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def _toml_list(items) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def users_toml(users: dict) -> str:
    """`[[users]]` tables. `users` maps a name to its password, or to (password, [groups]);
    a password of None leaves the user without a password hash (certificate login only)."""
    out = []
    for name, spec in users.items():
        password, groups = spec if isinstance(spec, tuple) else (spec, [])
        out.append("[[users]]")
        out.append(f'name = "{name}"')
        if password is not None:
            out.append(f'password_hash = "{hash_password(password)}"')
        out.append(f"groups = {_toml_list(groups)}")
        out.append("")
    return "\n".join(out)


def authorization_toml(entries: list[dict]) -> str:
    """`[[authorization]]` tables; each entry has `queue` or `topic`, and `read` / `write` /
    `admin` group lists."""
    out = []
    for e in entries:
        out.append("[[authorization]]")
        for kind in ("queue", "topic"):
            if kind in e:
                out.append(f'{kind} = "{e[kind]}"')
        for right in ("read", "write", "admin"):
            if right in e:
                out.append(f"{right} = {_toml_list(e[right])}")
        out.append("")
    return "\n".join(out)


def security_toml(users: dict | None = None, authorization: list[dict] | None = None) -> str:
    """Users and authorization entries, with the authentication back-off turned off so that
    refusals come at once."""
    text = "[security]\nauth_failure_delay_ms = 0\n\n"
    if users:
        text += users_toml(users)
    if authorization:
        text += authorization_toml(authorization)
    return text


class TlsFiles:
    """A server certificate (from `gateway gen-cert`), a CA (openssl) and client certificates
    it signs, all PEM, in `directory`."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "server-cert.pem"
        self.key = self.dir / "server-key.pem"
        subprocess.run(
            [str(check_binary()), "gen-cert", "--cert", str(self.cert), "--key", str(self.key)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.ca_cert = self.dir / "ca-cert.pem"
        self.ca_key = self.dir / "ca-key.pem"
        self._openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", "/CN=gateway test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        )

    def _openssl(self, *args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)

    def client(self, common_name: str) -> tuple[Path, Path]:
        """A client certificate for `common_name` signed by the CA: (cert file, key file)."""
        key = self.dir / f"client-{common_name}-key.pem"
        csr = self.dir / f"client-{common_name}.csr"
        cert = self.dir / f"client-{common_name}-cert.pem"
        ext = self.dir / "client-ext.cnf"
        ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
        self._openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={common_name}",
        )
        self._openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext,
        )
        return cert, key

    def config(self, client_certificates: str = "none") -> dict:
        """The `[tls]` table."""
        t = {"cert_file": str(self.cert), "key_file": str(self.key)}
        if client_certificates != "none":
            t["client_ca_file"] = str(self.ca_cert)
            t["client_certificates"] = client_certificates
        return t

#!/usr/bin/env python3
"""A tiny OpenID Connect provider for firedrill's integration tests.

TEST FIXTURE ONLY -- never a real identity provider: it signs anyone in at the
click of a button, keeps everything in memory and listens on loopback only.

  python3 tests/support/oidc-provider.py --port PORT --client-id ID --client-secret SECRET
                                        [--user NAME:GROUPS[:MODE]]...

--port 0 picks a free port. Once bound it prints one line, `ready http://127.0.0.1:PORT`
(the issuer), on stdout; logs go to stderr. SIGTERM/SIGINT stop it cleanly.
MODE makes the user's id_token faulty: wrong-aud, expired, bad-sig, bad-nonce.
Authorization code flow with PKCE (S256 only); GET /log lists the token requests seen.
Needs the standard library plus PyJWT and cryptography (Debian: python3-jwt, python3-cryptography).
"""
import argparse, base64, hashlib, html, json, re, secrets, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_USERS = ["alice:firedrill-operators", "vic:firedrill-viewers", "ada:firedrill-admins",
                 "nobody:", "mallory:firedrill-operators:wrong-aud", "old:firedrill-operators:expired"]
MODES = {"", "wrong-aud", "expired", "bad-sig", "bad-nonce"}
CODE_TTL, TOKEN_TTL = 60, 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_user(spec):
    name, sep, rest = spec.partition(":")
    groups, _, mode = rest.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or mode not in MODES:
        raise argparse.ArgumentTypeError(f"bad --user {spec!r}: want NAME:GROUPS[:MODE], MODE in "
                                         + ", ".join(sorted(m for m in MODES if m)))
    return {"name": name, "groups": [g for g in groups.split(",") if g], "mode": mode}


class Provider:
    """Everything the provider knows: keys, users, and the codes and tokens it handed out."""

    def __init__(self, client_id, client_secret, users):
        self.client_id, self.client_secret = client_id, client_secret
        self.users = {u["name"]: u for u in users}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # bad-sig
        self.kid = secrets.token_hex(8)
        self.issuer = None  # known once bound
        self.lock = threading.Lock()
        self.codes, self.used_codes, self.tokens, self.log = {}, set(), {}, []

    def jwks(self):
        pub = self.key.public_key().public_numbers()
        as_b64 = lambda i: b64url(i.to_bytes((i.bit_length() + 7) // 8, "big"))
        return {"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                          "n": as_b64(pub.n), "e": as_b64(pub.e)}]}

    def claims(self, user):
        n = user["name"]
        return {"sub": "user-" + n, "email": n + "@example.test", "email_verified": True,
                "name": n, "preferred_username": n, "groups": user["groups"]}

    def id_token(self, user, nonce):
        now, mode = int(time.time()), user["mode"]
        iat = now - 7200 if mode == "expired" else now
        exp = now - 3600 if mode == "expired" else iat + TOKEN_TTL
        payload = {"iss": self.issuer, "aud": "someone-else" if mode == "wrong-aud" else self.client_id,
                   "iat": iat, "exp": exp, "nonce": nonce + "-not-yours" if mode == "bad-nonce" else nonce,
                   **self.claims(user)}
        key = self.wrong_key if mode == "bad-sig" else self.key
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": self.kid})

    def check_authorize(self, p):
        """The reason an authorization request is refused, or None if it is fine."""
        try:
            uri = urlsplit(p.get("redirect_uri", ""))
            loopback = uri.scheme == "http" and uri.hostname in ("127.0.0.1", "localhost")
        except ValueError:
            loopback = False
        checks = [(p.get("client_id") == self.client_id, "unknown client_id"),
                  (loopback, "redirect_uri missing or not http://127.0.0.1 / http://localhost"),
                  (p.get("response_type") == "code", "response_type must be code"),
                  ("openid" in p.get("scope", "").split(), "scope must contain openid"),
                  (p.get("code_challenge"), "PKCE required: code_challenge missing"),
                  (p.get("code_challenge_method") == "S256",
                   "PKCE: code_challenge_method must be S256 (plain or missing is refused)"),
                  (p.get("state"), "state missing"), (p.get("nonce"), "nonce missing")]
        return next((reason for ok, reason in checks if not ok), None)


def redirect_to(uri, params):
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


class Handler(BaseHTTPRequestHandler):
    provider: Provider  # set on the subclass in main()
    server_version = "firedrill-test-oidc/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("oidc-provider: " + (fmt % args) + "\n")

    def send(self, status, body, ctype="application/json", headers=()):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        for k, v in [("Content-Type", ctype), ("Content-Length", str(len(data))),
                     ("Cache-Control", "no-store"), *headers]:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def text(self, status, msg):
        self.send(status, msg + "\n", "text/plain; charset=utf-8")

    def params(self, post):  # the query string, or the form-urlencoded body of a POST
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace") if post \
            else urlsplit(self.path).query
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self):
        p, path = self.provider, urlsplit(self.path).path
        if path == "/.well-known/openid-configuration":
            i = p.issuer
            self.send(200, {
                "issuer": i, "authorization_endpoint": i + "/authorize", "token_endpoint": i + "/token",
                "jwks_uri": i + "/jwks", "userinfo_endpoint": i + "/userinfo",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "grant_types_supported": ["authorization_code"]})
        elif path == "/jwks":
            self.send(200, p.jwks())
        elif path == "/authorize":
            self.authorize_page(self.params(post=False))
        elif path == "/userinfo":
            auth = self.headers.get("Authorization", "")
            with p.lock:
                user = p.tokens.get(auth[7:]) if auth[:7].lower() == "bearer " else None
            if user is None:
                self.send(401, {"error": "invalid_token"},
                          headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
            else:
                self.send(200, p.claims(user))
        elif path == "/log":
            with p.lock:
                log = list(p.log)
            self.send(200, log)
        else:
            self.text(404, "not found")

    def authorize_page(self, q):
        p = self.provider
        reason = p.check_authorize(q)
        if reason:
            return self.text(400, reason)
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in q.items() if k != "user")
        form = lambda user, id_, label: (  # user names are [A-Za-z0-9._-]: nothing to escape
            f'<form method="post" action="/authorize">{hidden}<input type="hidden" name="user" value="{user}">'
            f'<button type="submit" id="{id_}">{label}</button></form>\n')
        forms = "".join(form(n, "login-" + n, "Sign in as " + n) for n in p.users) + form("", "deny", "Deny")
        self.send(200, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to the test provider"
                       f"</title></head><body><h1>Sign in to the test provider</h1>\n{forms}</body></html>\n",
                  "text/html; charset=utf-8")

    def do_POST(self):
        path = urlsplit(self.path).path
        route = {"/authorize": self.authorize_post, "/token": self.token}.get(path)
        route(self.params(post=True)) if route else self.text(404, "not found")

    def authorize_post(self, f):
        p = self.provider
        reason = p.check_authorize(f)
        if reason:
            return self.text(400, reason)
        name = f.get("user", "")
        if name == "":
            loc = redirect_to(f["redirect_uri"], {"error": "access_denied", "state": f["state"]})
        elif name not in p.users:
            return self.text(400, "unknown user")
        else:
            code = secrets.token_urlsafe(24)
            with p.lock:
                p.codes[code] = {"client_id": f["client_id"], "redirect_uri": f["redirect_uri"],
                                 "code_challenge": f["code_challenge"], "nonce": f["nonce"],
                                 "scope": f["scope"], "user": p.users[name], "expires": time.time() + CODE_TTL}
            loc = redirect_to(f["redirect_uri"], {"code": code, "state": f["state"]})
        self.send(302, "", "text/plain", headers=[("Location", loc)])

    def token(self, f):
        p = self.provider
        auth = self.headers.get("Authorization", "")
        entry = {"client_auth": "basic" if auth[:6].lower() == "basic " else "post",
                 "had_code_verifier": bool(f.get("code_verifier"))}

        def fail(status, error, desc=None):
            entry["result"] = error
            with p.lock:
                p.log.append(entry)
            body = {"error": error, **({"error_description": desc} if desc else {})}
            self.send(status, body, headers=[("WWW-Authenticate", 'Basic realm="test"')] if status == 401 else ())

        if entry["client_auth"] == "basic":
            try:  # RFC 6749 2.3.1: id and secret are each form-urlencoded before base64
                cid, _, secret = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
                cid, secret = unquote_plus(cid), unquote_plus(secret)
            except ValueError:
                return fail(401, "invalid_client", "malformed Basic credentials")
        else:
            cid, secret = f.get("client_id"), f.get("client_secret")
        if cid != p.client_id or secret is None \
                or not secrets.compare_digest(secret.encode(), p.client_secret.encode()):
            return fail(401, "invalid_client")
        if f.get("grant_type") != "authorization_code":
            return fail(400, "unsupported_grant_type")
        code = f.get("code", "")
        with p.lock:  # a code is burnt by any exchange attempt, successful or not
            grant = p.codes.pop(code, None)
            reused = code in p.used_codes
            p.used_codes.add(code)
        if grant is None:
            return fail(400, "invalid_grant", "code already used" if reused else "unknown code")
        if time.time() > grant["expires"]:
            return fail(400, "invalid_grant", "code expired")
        if f.get("redirect_uri") != grant["redirect_uri"] or grant["client_id"] != cid:
            return fail(400, "invalid_grant", "redirect_uri or client_id differs from the authorization request")
        verifier = f.get("code_verifier", "")
        if not verifier or b64url(hashlib.sha256(verifier.encode()).digest()) != grant["code_challenge"]:
            return fail(400, "invalid_grant", "PKCE verification failed")
        access = secrets.token_urlsafe(32)
        with p.lock:
            p.tokens[access] = grant["user"]
            entry["result"] = "ok"
            p.log.append(entry)
        self.send(200, {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL,
                        "id_token": p.id_token(grant["user"], grant["nonce"]), "scope": grant["scope"]})


def main():
    ap = argparse.ArgumentParser(description="OIDC provider test fixture (never a real provider)")
    for flag in ("--port", "--client-id", "--client-secret"):
        ap.add_argument(flag, required=True, type=int if flag == "--port" else str)
    ap.add_argument("--user", action="append", type=parse_user, metavar="NAME:GROUPS[:MODE]")
    args = ap.parse_args()
    provider = Provider(args.client_id, args.client_secret, args.user or [parse_user(u) for u in DEFAULT_USERS])
    handler = type("BoundHandler", (Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready " + provider.issuer, flush=True)
    sys.stderr.write(f"oidc-provider: issuer {provider.issuer}, users {', '.join(provider.users)}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    sys.stderr.write("oidc-provider: stopped\n")


if __name__ == "__main__":
    main()

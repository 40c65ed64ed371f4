"""HTTP-side smoke checks for a running harness (run by infra/lib/smoke.sh
with $SB_PYTHON): moto (DynamoDB, Cognito IdP), the OIDC provider
(discovery, client_credentials JWTs, rotation, authorization code + PKCE)."""
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import urllib.parse

import boto3
import jwt
import requests

MOTO = os.environ["SB_MOTO_URL"]
OIDC = os.environ["SB_OIDC_URL"]
REGION = os.environ["SB_AWS_REGION"]
API = "urn:session-bridge:test-api"


def say(what, detail):
    print("smoke: %-28s %s" % (what, detail))


def check(cond, msg):
    if not cond:
        sys.exit("smoke: FAILED: " + msg)


def header(token):
    return jwt.get_unverified_header(token)


# --- moto
r = requests.get(MOTO + "/moto-api/", timeout=5)
check(r.status_code == 200, "moto /moto-api/ -> %s" % r.status_code)
kw = dict(region_name=REGION, endpoint_url=MOTO, aws_access_key_id="test", aws_secret_access_key="test")
ddb = boto3.client("dynamodb", **kw)
ddb.create_table(
    TableName="sb-smoke",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
tables = ddb.list_tables()["TableNames"]
check("sb-smoke" in tables, "ListTables: %s" % tables)
ddb.delete_table(TableName="sb-smoke")
say("moto dynamodb", "ListTables ok (%s)" % MOTO)
idp = boto3.client("cognito-idp", **kw)
pool = idp.create_user_pool(PoolName="sb-smoke")["UserPool"]["Id"]
jwks = requests.get("%s/%s/.well-known/jwks.json" % (MOTO, pool), timeout=5).json()
check(jwks.get("keys"), "cognito jwks empty")
idp.delete_user_pool(UserPoolId=pool)
say("moto cognito-idp", "pool + JWKS ok")

# --- OIDC
disc = requests.get(OIDC + "/.well-known/openid-configuration", timeout=5).json()
check(disc["issuer"] == OIDC, "issuer %r != %r" % (disc["issuer"], OIDC))
jwks_client = jwt.PyJWKClient(disc["jwks_uri"], cache_keys=False, cache_jwk_set=False)


def cc_token(resource=API):
    r = requests.post(
        disc["token_endpoint"],
        auth=("sb-test-client", "sb-test-secret"),
        data={"grant_type": "client_credentials", "resource": resource, "scope": "api"},
        timeout=5,
    )
    check(r.status_code == 200, "client_credentials: %s %s" % (r.status_code, r.text))
    return r.json()["access_token"]


def verify(token, audience=API):
    key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["RS256", "ES256"], audience=audience, issuer=OIDC)


t1 = cc_token()
c1 = verify(t1)
check(c1["client_id"] == "sb-test-client" and c1["scope"] == "api", "claims %s" % c1)
kid1 = header(t1)["kid"]
say("oidc discovery", "issuer %s" % OIDC)
say("oidc client_credentials", "RS256 JWT, kid %s verified" % kid1[:10])
te = cc_token("urn:session-bridge:test-api-es256")
check(header(te)["alg"] == "ES256", "es256 alg")
verify(te, "urn:session-bridge:test-api-es256")
say("oidc ES256 resource", "ES256 JWT verified")

rot = requests.post(OIDC + "/__test/rotate?keep_old=1", timeout=5).json()
t2 = cc_token()
kid2 = header(t2)["kid"]
check(kid2 != kid1 and kid2 == rot["signing_kid"], "rotate kid")
verify(t2)
verify(t1)  # old key kept
requests.post(OIDC + "/__test/rotate?keep_old=0", timeout=5).raise_for_status()
kids = {k["kid"] for k in requests.get(disc["jwks_uri"], timeout=5).json()["keys"]}
check(kid1 not in kids and kid2 not in kids, "old keys dropped")
t3 = cc_token()
check(header(t3)["kid"] in kids, "new kid published")
say("oidc rotate", "keep_old=1 keeps, keep_old=0 drops old kids")

# authorization code + PKCE with the test login form
redirect = os.environ.get("SB_OIDC_REDIRECT_URIS", "http://127.0.0.1/callback").split(",")[0]
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
s = requests.Session()
params = {
    "client_id": "sb-bridge", "response_type": "code", "redirect_uri": redirect,
    "scope": "openid profile email groups", "state": "st", "nonce": "nn",
    "code_challenge": challenge, "code_challenge_method": "S256",
}
r = s.get(disc["authorization_endpoint"], params=params, allow_redirects=False, timeout=5)
check(r.status_code in (302, 303), "auth: %s %s" % (r.status_code, r.text[:200]))
login_url = urllib.parse.urljoin(OIDC, r.headers["location"])
r = s.get(login_url, timeout=5)
check(r.status_code == 200 and "password" in r.text, "login form")
r = s.post(login_url, data={"username": "alice", "password": "wrong"}, allow_redirects=False, timeout=5)
check(r.status_code == 401, "wrong password -> %s" % r.status_code)
r = s.post(login_url, data={"username": "alice", "password": "password"}, allow_redirects=False, timeout=5)
loc = r.headers.get("location", "")
hops = 0
while not loc.startswith(redirect) and hops < 5:
    check(r.status_code in (302, 303), "login hop %s %s" % (r.status_code, r.text[:300]))
    r = s.get(urllib.parse.urljoin(OIDC, loc), allow_redirects=False, timeout=5)
    loc = r.headers.get("location", "")
    hops += 1
q = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
check("code" in q and q.get("state") == ["st"], "callback %s" % loc)
r = requests.post(
    disc["token_endpoint"], auth=("sb-bridge", "sb-bridge-secret"),
    data={"grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": redirect,
          "code_verifier": verifier},
    timeout=5,
)
check(r.status_code == 200, "code exchange: %s %s" % (r.status_code, r.text))
tok = r.json()
idt = jwt.decode(tok["id_token"], jwks_client.get_signing_key_from_jwt(tok["id_token"]),
                 algorithms=["RS256"], audience="sb-bridge", issuer=OIDC)
check(idt["sub"] == "alice" and idt["nonce"] == "nn", "id_token %s" % idt)
ui = requests.get(disc["userinfo_endpoint"], headers={"authorization": "Bearer " + tok["access_token"]}, timeout=5)
check(ui.status_code == 200 and ui.json().get("email") == "alice@example.test", "userinfo %s" % ui.text)
say("oidc authorization_code+PKCE", "id_token sub=alice, userinfo ok (%d hops)" % (hops + 3))

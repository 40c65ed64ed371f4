"""CloudFormation template: cfn-lint, the settings the issue asks for, then a
deployment to moto's CloudFormation and the service run against the tables
that stack created, configured from the stack's outputs alone.

usage: cfn_check.py TEMPLATE BINARY WORK_DIR PORT
env:   SB_MOTO_URL, SB_AWS_REGION
"""
import os
import sys
import time

import boto3
import requests
from cfnlint.decode import cfn_yaml

from common import Failed, Service, check, env, login, run, say, wait_ok, whoami, TEST_PASSWORD

# Output → the setting it fills. A new output must be added here (and to
# the README) or the check fails: the mapping stays one-to-one.
OUTPUT_KEYS = {
    "StoreDynamodbRegion": "store.dynamodb.region",
    "StoreDynamodbSessionsTable": "store.dynamodb.sessions_table",
    "StoreDynamodbRevocationTable": "store.dynamodb.revocation_table",
    "StoreRedisUrl": "store.redis.url",
    "LoginCognitoRegion": "login.cognito.region",
    "LoginCognitoUserPoolId": "login.cognito.user_pool_id",
    "LoginCognitoClientId": "login.cognito.client_id",
}
NOT_SETTINGS = {"RedisAuthTokenSecretArn"}
TTL_ATTRIBUTE = "expires_at"  # adapters/dynamodb: sessions::EXPIRES_AT


def lint(template):
    say(f"cfn-lint {template}")
    run(["cfn-lint", template])


def assert_template(template):
    with open(template) as f:
        t = cfn_yaml.loads(f.read())
    res = t["Resources"]
    tables = {n: r for n, r in res.items() if r["Type"] == "AWS::DynamoDB::Table"}
    check(set(tables) == {"SessionsTable", "RevocationTable"}, f"tables: {sorted(tables)}")
    for name, r in tables.items():
        p = r["Properties"]
        check(p.get("TimeToLiveSpecification") == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
              f"{name}: TTL on {TTL_ATTRIBUTE}")
        check(p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True,
              f"{name}: point-in-time recovery")
        check(p.get("BillingMode") == "PAY_PER_REQUEST", f"{name}: on-demand, as create-tables makes it")
    redis = res["Redis"]["Properties"]
    check(redis.get("TransitEncryptionEnabled") is True, "Redis: TLS")
    check(redis.get("AtRestEncryptionEnabled") is True, "Redis: encryption at rest")
    check("AuthToken" in redis, "Redis: auth token")
    check(redis.get("Engine") == "redis", "Redis: engine")
    client = res["UserPoolClient"]["Properties"]
    check(sorted(client.get("ExplicitAuthFlows", [])) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"],
          "app client: exactly USER_PASSWORD_AUTH + REFRESH_TOKEN_AUTH")
    outputs = t["Outputs"]
    check(set(outputs) == set(OUTPUT_KEYS) | NOT_SETTINGS, f"outputs: {sorted(outputs)}")
    for name, key in OUTPUT_KEYS.items():
        desc = outputs[name]["Description"]
        check(desc.split()[0] == key, f"output {name}: Description must start with {key}")


def deploy(cf, stack, prefix, template):
    say(f"create-stack {stack} on moto's CloudFormation")
    with open(template) as f:
        body = f.read()
    # moto's CloudFormation has no ElastiCache, Cognito or Secrets Manager
    # resources: those parts are covered by cfn-lint and assert_template.
    cf.create_stack(
        StackName=stack,
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": "NamePrefix", "ParameterValue": prefix},
            {"ParameterKey": "CreateRedis", "ParameterValue": "false"},
            {"ParameterKey": "CreateUserPool", "ParameterValue": "false"},
        ],
    )
    deadline = time.monotonic() + 60
    while True:
        s = cf.describe_stacks(StackName=stack)["Stacks"][0]
        if s["StackStatus"] == "CREATE_COMPLETE":
            break
        check(s["StackStatus"].endswith("IN_PROGRESS") and time.monotonic() < deadline,
              f"stack {s['StackStatus']}: {s.get('StackStatusReason')}")
        time.sleep(0.5)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}
    say(f"stack outputs: {outputs}")
    return outputs


def config_from_outputs(outputs, moto, keys_file, extra=""):
    """A service configuration whose store settings come from the outputs
    only (plus moto's endpoint, which a real deployment does not set)."""
    lines = ['[store]', 'kind = "dynamodb"', '[store.dynamodb]', f'endpoint_url = "{moto}"']
    for name, value in outputs.items():
        key = OUTPUT_KEYS.get(name)
        check(key is not None, f"output {name} maps to no setting")
        check(key.startswith("store.dynamodb."), f"output {name}: unexpected on this stack")
        lines.append(f'{key.rsplit(".", 1)[1]} = "{value}"')
    check(len(lines) == 7, "the stack must output the region and both table names")
    return "\n".join(
        [f'[tokens]\nkeys_file = "{keys_file}"\ngenerate_keys = false\n[users]\ndev_user = false\n', *lines, extra]
    )


def describe(ddb, table):
    t = ddb.describe_table(TableName=table)["Table"]
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    return {
        "keys": t["KeySchema"],
        "attributes": sorted(t["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "billing": t.get("BillingModeSummary", {}).get("BillingMode"),
        "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
    }


def main():
    template, binary, work, port = sys.argv[1:5]
    moto, region = env("SB_MOTO_URL"), env("SB_AWS_REGION")
    os.makedirs(work, exist_ok=True)
    lint(template)
    assert_template(template)
    say("template: TTL + PITR on both tables, Redis TLS + auth token, the client's two flows, outputs named after settings")

    aws = dict(endpoint_url=moto, region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
    aws_env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": region}
    cf, ddb = boto3.client("cloudformation", **aws), boto3.client("dynamodb", **aws)
    prefix = f"sb-deploy-{os.getpid()}"
    outputs = deploy(cf, prefix, prefix, template)
    sessions, revocation = outputs["StoreDynamodbSessionsTable"], outputs["StoreDynamodbRevocationTable"]
    check((sessions, revocation) == (f"{prefix}-sessions", f"{prefix}-revocation"), "table names")

    # What create-tables itself makes, to compare the stack's tables with.
    ref = os.path.join(work, "reference.toml")
    with open(ref, "w") as f:
        f.write(f'[store]\nkind = "dynamodb"\n[store.dynamodb]\nendpoint_url = "{moto}"\nregion = "{region}"\n'
                f'sessions_table = "{prefix}-ref-sessions"\nrevocation_table = "{prefix}-ref-revocation"\n')
    run([binary, "--config", ref, "dynamodb", "create-tables"], env_extra=aws_env)

    ring = os.path.join(work, "ring")
    run([binary, "--data-dir", ring, "keys", "generate"], quiet=True)
    config = os.path.join(work, "from-outputs.toml")
    with open(config, "w") as f:
        f.write(config_from_outputs(outputs, moto, os.path.join(ring, "keys.json")))
    cli = [binary, "--config", config, "--data-dir", os.path.join(work, "data")]
    run([*cli, "check-config"], env_extra=aws_env)

    before = set(ddb.list_tables()["TableNames"])
    stack_tables = {t: describe(ddb, t) for t in (sessions, revocation)}
    say("session-bridge dynamodb create-tables against the stack's tables")
    run([*cli, "dynamodb", "create-tables"], env_extra=aws_env)
    check(set(ddb.list_tables()["TableNames"]) == before, "create-tables created tables the stack should have")
    for table, kind in ((sessions, "sessions"), (revocation, "revocation")):
        got, want = describe(ddb, table), describe(ddb, f"{prefix}-ref-{kind}")
        for field in ("keys", "attributes", "billing"):
            check(got[field] == want[field], f"{table}: {field} {got[field]} != create-tables' {want[field]}")
            check(got[field] == stack_tables[table][field], f"{table}: create-tables changed {field}")
        check(want["ttl"] == ("ENABLED", TTL_ATTRIBUTE), f"create-tables' TTL: {want['ttl']}")
        check(got["ttl"] == want["ttl"], f"{table}: TTL {got['ttl']}")
        say(f"{table}: keys, attribute types and billing mode equal create-tables' own; "
            f"TTL as deployed by moto {stack_tables[table]['ttl']} (moto's CloudFormation drops "
            "TimeToLiveSpecification; the template sets it, see assert_template)")

    run([*cli, "users", "add", "alice", "--password-stdin"], input=TEST_PASSWORD + "\n", quiet=True)
    base = f"http://127.0.0.1:{port}"
    say(f"session-bridge serve on {base} with the stack's tables")
    svc = Service([*cli, "serve", "--listen", f"127.0.0.1:{port}"], log_path=os.path.join(work, "serve.log"),
                  env_extra=aws_env, cwd=work)
    try:
        wait_ok(f"{base}/readyz", alive=svc.alive)
        cookies = login(base, "alice")
        status, body = whoami(base, cookies)
        check(status == 200 and body.get("username") == "alice", f"GET /session: {status} {body}")
        n = ddb.scan(TableName=sessions, Select="COUNT")["Count"]
        check(n >= 1, f"no session item in {sessions}")
        say(f"logged in; {sessions} holds {n} session item(s)")
        r = requests.post(f"{base}/logout", cookies=cookies, headers={"Origin": base, "Sec-Fetch-Site": "same-origin"}, timeout=10)
        check(r.status_code in (200, 204, 303), f"POST /logout answered {r.status_code}: {r.text[:200]}")
        status, _ = whoami(base, cookies)
        check(status == 401, f"GET /session after logout: {status}")
        n = ddb.scan(TableName=revocation, Select="COUNT")["Count"]
        check(n >= 1, f"logout wrote nothing to {revocation}")
        say(f"logged out; {revocation} holds {n} item(s)")
    finally:
        rc = svc.stop()
    check(rc == 0, f"the service exited {rc} on SIGTERM:\n{svc.tail()}")
    say("service stopped with exit 0 on SIGTERM")
    say("cloudformation: OK")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        say(f"cloudformation: FAILED: {e}")
        sys.exit(1)

"""The container image: build it on the cached base, run it the way the
README says (read-only root, no capabilities, data volume, secrets mounted
read-only) against the suite's Redis, log in, restart the container and find
the session still there, then stop it and see exit 0.

usage: container_check.py CONTAINERFILE BINARY BASE_IMAGE WORK_DIR PORT
env:   SB_REDIS_URL, CONTAINERS_CONF (podman with runc, see infra/deploy/test.sh)
"""
import json
import os
import shutil
import subprocess
import sys

from common import Failed, check, env, login, run, say, wait_ok, whoami, TEST_PASSWORD

IMAGE = "localhost/session-bridge:deploy-test"
UID = 10001
# A Redis database of its own, emptied first, so "the session is in Redis"
# can be told by counting keys.
REDIS_DB = 13


def podman(*args, **kw):
    return run(["podman", "--runtime", "runc", *args], **kw)


def build(containerfile, binary, base, work):
    ctx = os.path.join(work, "context")
    os.makedirs(ctx, exist_ok=True)
    shutil.copy2(binary, os.path.join(ctx, "session-bridge"))
    say(f"podman build --build-arg BASE={base}")
    podman("build", "--format", "docker", "--pull=never", "--build-arg", f"BASE={base}",
           "-f", containerfile, "-t", IMAGE, ctx, quiet=True)
    info = json.loads(podman("image", "inspect", IMAGE, quiet=True)[1])[0]
    base_size = json.loads(podman("image", "inspect", base, quiet=True)[1])[0]["Size"]
    cfg = info["Config"]
    check(cfg.get("User") == f"{UID}:{UID}", f"image user {cfg.get('User')}")
    check(cfg.get("StopSignal") == "SIGTERM", f"stop signal {cfg.get('StopSignal')}")
    check("/var/lib/session-bridge" in (cfg.get("Volumes") or {}), "data directory is not a volume")
    check((info.get("Healthcheck") or {}).get("Test", [None])[0] == "CMD", "no health check in the image")
    mb = lambda n: f"{n / 1e6:.1f} MB"
    say(f"image {IMAGE}: {mb(info['Size'])} (base {mb(base_size)}, "
        f"binary {mb(os.path.getsize(binary))})")
    return info["Size"]


def redis_keys(url):
    out = run(["redis-cli", "-u", f"{url}/{REDIS_DB}", "dbsize"], quiet=True)[1]
    return int(out.strip())


def main():
    containerfile, binary, base, work, port = sys.argv[1:6]
    redis = env("SB_REDIS_URL")
    os.makedirs(work, exist_ok=True)
    build(containerfile, binary, base, work)

    # The key ring and the config, mounted read-only as Kubernetes would.
    secrets, conf = os.path.join(work, "secrets"), os.path.join(work, "conf")
    run([binary, "--data-dir", secrets, "keys", "generate"], quiet=True)
    os.chown(secrets, UID, UID)
    os.chown(os.path.join(secrets, "keys.json"), UID, UID)
    os.makedirs(conf, exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    with open(os.path.join(conf, "session-bridge.toml"), "w") as f:
        f.write(f'public_url = "{base_url}"\n[store]\nkind = "redis"\n[store.redis]\n'
                f'url = "{redis}/{REDIS_DB}"\n[tokens]\n'
                'keys_file = "/run/secrets/session-bridge/keys.json"\ngenerate_keys = false\n'
                '[users]\ndev_user = false\n')
    run(["redis-cli", "-u", f"{redis}/{REDIS_DB}", "flushdb"], quiet=True)

    name, volume = f"sb-deploy-{os.getpid()}", f"sb-deploy-data-{os.getpid()}"
    common = ["--read-only", "--cap-drop=all", "--security-opt=no-new-privileges", "--network=host",
              "-v", f"{volume}:/var/lib/session-bridge",
              "-v", f"{conf}:/etc/session-bridge:ro", "-v", f"{secrets}:/run/secrets/session-bridge:ro",
              "-e", "SESSION_BRIDGE_CONFIG=/etc/session-bridge/session-bridge.toml",
              "-e", f"SESSION_BRIDGE__LISTEN=127.0.0.1:{port}"]
    try:
        say("users add alice (the image's own CLI, into the data volume)")
        podman("run", "--rm", "-i", *common, IMAGE, "users", "add", "alice", "--password-stdin",
               input=TEST_PASSWORD + "\n", quiet=True)
        say(f"podman run -d --read-only --cap-drop=all --network=host {IMAGE}")
        podman("run", "-d", "--name", name, *common, IMAGE, quiet=True)
        running = lambda: podman("inspect", "-f", "{{.State.Running}}", name, quiet=True)[1].strip() == "true"
        wait_ok(f"{base_url}/readyz", alive=running)

        uid = podman("exec", name, "/bin/bash", "-c", "id -u", quiet=True)[1].strip()
        check(uid == str(UID), f"the service runs as uid {uid}")
        root_opts = podman("exec", name, "/bin/bash", "-c",
                           'while read -r _ mnt _ opts _; do [ "$mnt" = / ] && echo "$opts"; done </proc/mounts; true',
                           quiet=True)[1].strip()
        check(root_opts.split(",")[0] == "ro", f"the root filesystem is mounted {root_opts}")
        podman("healthcheck", "run", name, quiet=True)
        limits = podman("exec", name, "/bin/bash", "-c", "grep 'open files' /proc/1/limits", quiet=True)[1]
        say(f"running as uid {uid}, root filesystem read-only, health check passes; {' '.join(limits.split())}")

        cookies = login(base_url, "alice")
        status, body = whoami(base_url, cookies)
        check(status == 200 and body.get("username") == "alice", f"GET /session: {status} {body}")
        keys = redis_keys(redis)
        check(keys >= 1, "the session is not in Redis")
        say(f"logged in as alice; Redis db {REDIS_DB} holds {keys} key(s)")

        say("podman restart")
        podman("restart", "-t", "30", name, quiet=True)
        wait_ok(f"{base_url}/readyz", alive=running)
        status, body = whoami(base_url, cookies)
        check(status == 200 and body.get("username") == "alice", f"after restart GET /session: {status} {body}")
        say("after the restart the session is still there")

        say("podman stop (SIGTERM)")
        podman("stop", "-t", "30", name, quiet=True)
        rc = podman("inspect", "-f", "{{.State.ExitCode}}", name, quiet=True)[1].strip()
        logs = podman("logs", name, quiet=True)[1]
        check(rc == "0", f"exit status {rc} on stop; logs:\n{logs[-2000:]}")
        check("shutting down" in logs and "stopped" in logs, "no graceful shutdown in the logs")
        say("stopped: exit 0 after a graceful shutdown")
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)
        subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)
    say("container: OK")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        say(f"container: FAILED: {e}")
        sys.exit(1)

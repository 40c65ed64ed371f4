"""Kubernetes manifests: schema validation offline, then the settings a
cluster operator relies on (security context, secrets as files only, probes,
resources, matching selectors) and that the ConfigMap's TOML is a valid
configuration for the binary.

usage: k8s_check.py MANIFEST_DIR CONTAINERFILE BINARY WORK_DIR
"""
import base64
import os
import re
import sys

import yaml

from common import Failed, check, run, say

# The oldest Kubernetes still commonly run, and the newest the validator knows.
VERSIONS = ["1.29.0", "1.37.0"]


def load(manifest_dir):
    docs = {}
    for name in sorted(os.listdir(manifest_dir)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(manifest_dir, name)) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def secret_manifests(binary, work):
    """The two Secrets as `kubectl create secret generic --from-file` would
    make them, from a freshly generated key ring: validated like the rest."""
    ring = os.path.join(work, "ring")
    run([binary, "--data-dir", ring, "keys", "generate"], quiet=True)
    with open(os.path.join(ring, "keys.json"), "rb") as f:
        keys = base64.b64encode(f.read()).decode()
    token = base64.b64encode(os.urandom(32).hex().encode()).decode()
    path = os.path.join(work, "secrets.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": "session-bridge-keys"}, "data": {"keys.json": keys}},
                {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": "session-bridge-admin-token"}, "data": {"token": token}},
            ],
            f,
        )
    return path


def validate(files):
    for version in VERSIONS:
        say(f"kubernetes-validate --strict -k {version}")
        run(["kubernetes-validate", "--strict", "-k", version, *files])


def containerfile_settings(path):
    text = open(path).read()
    user = re.search(r"^USER\s+(\d+):(\d+)", text, re.M)
    data_dir = re.search(r"SESSION_BRIDGE__DATA_DIR=(\S+)", text)
    port = re.search(r"SESSION_BRIDGE__LISTEN=\S+:(\d+)", text)
    check(user and data_dir and port, "Containerfile: USER, DATA_DIR or LISTEN not found")
    return int(user.group(1)), int(user.group(2)), data_dir.group(1), int(port.group(1))


def assert_security(docs, containerfile):
    uid, gid, data_dir, port = containerfile_settings(containerfile)
    dep = docs.get(("Deployment", "session-bridge"))
    check(dep is not None, "no Deployment session-bridge")
    spec = dep["spec"]
    check(spec.get("replicas") == 2, f"replicas is {spec.get('replicas')}, want 2")
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    check(spec["selector"]["matchLabels"].items() <= labels.items(), "selector does not match pod labels")

    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod: runAsNonRoot must be true")
    check(psc.get("runAsUser") == uid and psc.get("fsGroup") == gid,
          f"pod: runAsUser/fsGroup must be the image's user {uid}:{gid}")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod: seccomp RuntimeDefault")
    check(pod.get("automountServiceAccountToken") is False, "pod: service account token mounted")
    check(pod.get("enableServiceLinks") is False, "pod: service links inject SESSION_BRIDGE_* variables")
    check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"),
          "pod: host namespaces")

    containers = pod["containers"] + pod.get("initContainers", [])
    check(len(pod["containers"]) == 1, "one container expected")
    for c in containers:
        sc = c.get("securityContext", {})
        name = c["name"]
        check(sc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot must be true")
        check(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem must be true")
        check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
        check(sc.get("privileged") in (None, False), f"{name}: privileged")
        caps = sc.get("capabilities", {})
        check(caps.get("drop") == ["ALL"], f"{name}: capabilities must drop ALL")
        check(not caps.get("add"), f"{name}: capabilities added")
        # Secrets reach the process as files only.
        for e in c.get("env", []):
            check("secretKeyRef" not in e.get("valueFrom", {}), f"{name}: secret in env {e['name']}")
        check(not any("secretRef" in s for s in c.get("envFrom", [])), f"{name}: envFrom a Secret")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            check({"cpu", "memory"} <= set(res.get(kind, {})), f"{name}: resources.{kind} cpu+memory")

    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("http") == port, f"container port must be the image's {port}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == "/healthz" and get.get("port") in ("http", port),
              f"{probe} must GET /healthz on the http port")

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    check(set(volumes) == set(mounts), "every volume is mounted once")
    secrets = {v["secret"]["secretName"]: n for n, v in volumes.items() if "secret" in v}
    check(set(secrets) == {"session-bridge-keys", "session-bridge-admin-token"},
          f"secret volumes: {sorted(secrets)}")
    for secret, vol in secrets.items():
        m = mounts[vol]
        check(m.get("readOnly") is True and "subPath" not in m, f"{secret}: read-only, no subPath")
        mode = volumes[vol]["secret"].get("defaultMode")
        check(mode is not None and mode & 0o007 == 0, f"{secret}: files must not be world-readable")
    check(mounts["data"]["mountPath"] == data_dir, f"data volume must be mounted at {data_dir}")

    cm_name = volumes["config"]["configMap"]["name"]
    cm = docs.get(("ConfigMap", cm_name))
    check(cm is not None, f"ConfigMap {cm_name} missing")
    cfg_env = {e["name"]: e.get("value") for e in c.get("env", [])}
    cfg_path = cfg_env.get("SESSION_BRIDGE_CONFIG", "")
    check(cfg_path.startswith(mounts["config"]["mountPath"] + "/"), "SESSION_BRIDGE_CONFIG outside the config mount")
    check(os.path.basename(cfg_path) in cm["data"], "SESSION_BRIDGE_CONFIG names no ConfigMap key")
    keys_mount = mounts[secrets["session-bridge-keys"]]["mountPath"]

    for kind in ("Service", "PodDisruptionBudget"):
        obj = docs.get((kind, "session-bridge"))
        check(obj is not None, f"no {kind} session-bridge")
        sel = obj["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        check(sel.items() <= labels.items(), f"{kind} selector does not match the pods")
    pdb = docs[("PodDisruptionBudget", "session-bridge")]["spec"]
    check(pdb.get("minAvailable") == 1 or pdb.get("maxUnavailable") == 1, "PDB must keep one pod")
    svc = docs[("Service", "session-bridge")]["spec"]
    check(all(p["targetPort"] in ("http", port) for p in svc["ports"]), "Service targets the http port")
    return cm["data"][os.path.basename(cfg_path)], keys_mount


def check_config(binary, toml, keys_mount, work):
    """The ConfigMap's TOML passes `session-bridge check-config`, and names
    the key ring inside the Secret's mount."""
    check(f'keys_file = "{keys_mount}/keys.json"' in toml, "tokens.keys_file must be in the keys mount")
    check("generate_keys = false" in toml, "tokens.generate_keys must be false with a mounted ring")
    path = os.path.join(work, "configmap.toml")
    with open(path, "w") as f:
        f.write(toml)
    say("session-bridge check-config on the ConfigMap's TOML")
    run([binary, "--config", path, "check-config"])


def main():
    manifest_dir, containerfile, binary, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    files = [os.path.join(manifest_dir, f) for f in sorted(os.listdir(manifest_dir)) if f.endswith(".yaml")]
    validate(files + [secret_manifests(binary, work)])
    say("security settings of the manifests")
    toml, keys_mount = assert_security(load(manifest_dir), containerfile)
    check_config(binary, toml, keys_mount, work)
    say("kubernetes: OK")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        say(f"kubernetes: FAILED: {e}")
        sys.exit(1)

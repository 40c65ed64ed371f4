#!/usr/bin/env python3
"""Pick N free TCP ports on 127.0.0.1 for one harness run.

usage: freeports.py N RUN_ROOT OWN_PORTS_FILE

Call it under `flock RUN_ROOT/.ports.lock` so that parallel harness runs never
pick the same port: ports listed in any RUN_ROOT/*/ports file are reserved and
skipped, and the chosen ports are appended to OWN_PORTS_FILE before the lock is
released. Ports are chosen below the kernel's ephemeral range, so outgoing
connections (which take ephemeral source ports) cannot grab them between the
pick and the server's bind.
"""
import glob
import os
import random
import socket
import sys


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def reserved(root):
    out = set()
    for path in glob.glob(os.path.join(root, "*", "ports")):
        try:
            with open(path) as f:
                out.update(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return out


def can_bind(port):
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def main():
    n, root, own = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    taken = reserved(root)
    low, high = 20000, max(ephemeral_low() - 1, 20000 + 10 * n)
    if high > 65535 - 1:
        high = 65535 - 1
    ports = []
    for _ in range(5000):
        if len(ports) == n:
            break
        p = random.randint(low, high)
        if p in taken or p in ports or not can_bind(p):
            continue
        ports.append(p)
    if len(ports) != n:
        sys.exit("freeports: could not find %d free ports" % n)
    with open(own, "a") as f:
        f.write(" ".join(map(str, ports)) + "\n")
    print(" ".join(map(str, ports)))


if __name__ == "__main__":
    main()

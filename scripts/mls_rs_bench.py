#!/usr/bin/env python3
"""Times mls-rs (via PyPI agentvault-mls-rs-uniffi 0.1.1, suite 1) on the operations that
qmls-bench measures, on the same machine, so that the two can be compared.

mls-rs's add-only commits carry no UpdatePath, so after the add-all commit the creator's empty
commit encrypts its path secrets to all N-1 other leaves: compare with qmls-bench's
"empty commit, sparse" column. The binding cannot make external commits, so the mls-rs
benchmark's own setup (two external joiners) is not reproducible here.

    pip install agentvault-mls-rs-uniffi==0.1.1
    python3 scripts/mls_rs_bench.py --sizes 16,64,128,1000
"""

import argparse
import statistics
import sys
import time

try:
    import mls_rs_uniffi as mls
except ImportError:
    sys.stderr.write("mls_rs_bench: pip install agentvault-mls-rs-uniffi==0.1.1\n")
    sys.exit(2)

SUITE = mls.CipherSuite.CURVE25519_AES128


class Storage(mls.GroupStateStorage):
    def __init__(self):
        self.states = {}
        self.epochs = {}

    def state(self, group_id):
        return self.states.get(bytes(group_id))

    def epoch(self, group_id, epoch_id):
        return self.epochs.get((bytes(group_id), epoch_id))

    def write(self, group_id, group_state, epoch_inserts, epoch_updates):
        self.states[bytes(group_id)] = bytes(group_state)
        for record in list(epoch_inserts) + list(epoch_updates):
            self.epochs[(bytes(group_id), record.id)] = bytes(record.data)

    def max_epoch_id(self, group_id):
        ids = [e for (g, e) in self.epochs if g == bytes(group_id)]
        return max(ids) if ids else None


def client(name):
    config = mls.ClientConfig(group_state_storage=Storage(), use_ratchet_tree_extension=True)
    return mls.Client(name.encode(), mls.generate_signature_keypair(SUITE), config)


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def run(size, runs):
    creator = client("creator")
    group_id = f"bench-{size}".encode()
    group = creator.create_group(group_id)
    members = [client(f"member {i}") for i in range(1, size)]
    packages = [m.generate_key_package_message() for m in members]
    start = time.perf_counter()
    output = group.add_members(packages)
    add_all = time.perf_counter() - start
    group.process_incoming_message(output.commit_message)
    # One member joins, to receive commits and messages.
    receiver = members[0].join_group(None, output.welcome_message).group
    commit_times = []
    process_times = []
    for _ in range(runs):
        start = time.perf_counter()
        commit = group.commit()
        commit_times.append(time.perf_counter() - start)
        group.process_incoming_message(commit.commit_message)
        start = time.perf_counter()
        receiver.process_incoming_message(commit.commit_message)
        process_times.append(time.perf_counter() - start)
    payload = b"a" * 100
    pairs = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 0.5:
        message = group.encrypt_application_message(payload)
        receiver.process_incoming_message(message)
        pairs += 1
    rate = pairs / (time.perf_counter() - start)
    return [
        "mls-rs 1", str(size), ms(add_all), ms(statistics.median(commit_times)),
        ms(statistics.median(process_times)), f"{rate:.0f}",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,128,1000")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    header = ["suite", "N", "add N-1 (1 commit)", "empty commit, sparse", "process commit", "app msgs/s"]
    rows = [run(int(size), args.runs) for size in args.sizes.split(",")]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    main()

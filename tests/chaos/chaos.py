"""Chaos run: several `shipper run` instances in one consumer group under combined faults.

Started by tests/chaos/run.sh (see tests/chaos/README.md for what it does and prints). One
process drives everything: an SLS emulator (its own process, on a data directory), a
writer that puts numbered logs into a 16-shard logstore throughout, an HEC receiver that
records every copy of every log that arrives, and the shipper instances (the first one in
its own network namespace, joined to the host by a veth pair). A schedule drawn from the
seed injects one fault at a time; at the end every fault is healed, the run waits until
every written log arrived (or was dead-lettered), and the figures are printed.

Needs root (network namespace, tmpfs), `ip`, the official SLS Python SDK (tests/requirements.txt)
and a shipper binary plus the splunk-hec plugin. Traffic stays on loopback and the veth pair.
"""

import argparse
import gzip
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aliyun.log import LogClient, LogItem, PutLogsRequest

AK_ID = "chaos-ak"
AK_KEY = "chaos-secret"
PROJECT = "chaos"
LOGSTORE = "logs"
SHARDS = 16
# Sends in flight per shard (the pipeline's `DEFAULT_MAX_IN_FLIGHT`) and the share of delivered
# logs duplicates may reach: the bounds of docs/reliability.md §2 that the run is held to.
SENDS_IN_FLIGHT = 8
DUPLICATE_BUDGET = 0.03
GROUP = "chaos"
HEC_TOKEN = "00000000-1111-2222-3333-444444444444"
SEQ_RE = re.compile(rb"chaos_seq\W{1,8}(\d+)")
# The consumer group's timeouts: short, so a run sees many rebalances.
HEARTBEAT = "1s"
GROUP_TIMEOUT = 5

FAULTS = [
    "kill9", "sigterm", "sigstop", "partition", "emulator_kill9", "emulator_5xx",
    "emulator_quota", "hec_outage", "hec_503", "hec_slow", "dead_letter_full",
]


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Clock:
    """Which fault was last started: duplicates are blamed on it."""

    def __init__(self):
        self.current = "none"
        self.lock = threading.Lock()

    def set(self, name):
        with self.lock:
            self.current = name

    def get(self):
        with self.lock:
            return self.current


class Receiver:
    """An HEC endpoint that records (seq, arrival time, blamed fault) of every accepted event.

    Modes (set by the schedule): normal, 503 storm, slow answers, outage (nothing listens),
    and data rejection (400 code 6 for event 0 of some requests, which shipper dead-letters).
    """

    def __init__(self, host, port, clock, rng):
        self.host, self.port, self.clock, self.rng = host, port, clock, rng
        self.lock = threading.Lock()
        self.copies = defaultdict(list)  # seq -> [(t, fault)]
        self.requests = Counter()
        self.largest = Counter()  # fault -> most events in one accepted request
        self.mode = {"p503": 0.0, "slow": 0.0, "reject": 0.0}
        self.server = None
        self.start()

    def handler(self):
        rcv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.answer(200, {"text": "HEC is healthy", "code": 17})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if self.headers.get("Content-Encoding", "") == "gzip":
                    body = gzip.decompress(body)
                with rcv.lock:
                    mode = dict(rcv.mode)
                    draw = rcv.rng.random()
                if mode["slow"]:
                    time.sleep(mode["slow"])
                if draw < mode["p503"]:
                    rcv.requests["503"] += 1
                    return self.answer(503, {"text": "Server is busy", "code": 9})
                if draw < mode["reject"]:
                    rcv.requests["400"] += 1
                    return self.answer(400, {"text": "Invalid data format", "code": 6,
                                             "invalid-event-number": 0})
                now, fault = time.time(), rcv.clock.get()
                with rcv.lock:
                    events = 0
                    for m in SEQ_RE.finditer(body):
                        rcv.copies[int(m.group(1))].append((now, fault))
                        events += 1
                    rcv.largest[fault] = max(rcv.largest[fault], events)
                    rcv.requests["200"] += 1
                self.answer(200, {"text": "Success", "code": 0})

        return H

    def start(self):
        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client gone before the answer (killed, timed out): its events counted.
                pass

        self.server = Server((self.host, self.port), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def set(self, **mode):
        with self.lock:
            self.mode.update(mode)

    def url(self):
        return f"http://{self.host}:{self.port}"


class Emulator:
    def __init__(self, shipper, host, port, data_dir, fault_file, out):
        self.cmd = [shipper, "emulator", "--listen", f"{host}:{port}", "--access-key-id", AK_ID,
                    "--data-dir", data_dir, "--logstore", f"{PROJECT}/{LOGSTORE}:{SHARDS}",
                    "--fault-file", fault_file, "--log-level", "warn"]
        env = dict(os.environ, SLS_AK_KEY=AK_KEY)
        self.env, self.out, self.fault_file = env, out, fault_file
        self.proc = None
        self.restarts = 0
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=self.out)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on"):
            raise RuntimeError(f"the emulator did not start: {line!r}")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def faults(self, text):
        tmp = self.fault_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.fault_file)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Writer(threading.Thread):
    """Puts numbered logs (`chaos_seq`, `chaos_ts`) spread over the shards, `rate` a second.

    `lock` is held around each PutLogs, so the emulator is only killed between writes: a
    write either happened (and was answered) or not, and the count of logs written is exact.
    """

    def __init__(self, endpoint, rate):
        super().__init__(daemon=True)
        self.client = LogClient(endpoint, AK_ID, AK_KEY)
        # The SDK only skips the `<project>.` host prefix for bare IPs (no port); the project
        # still goes in the Host header, which is what the emulator reads.
        self.client._isRowIp = True
        self.rate = rate
        self.lock = threading.Lock()
        self.written = {}  # seq -> time acknowledged
        self.failures = 0
        self.last_error = None
        self.stopping = threading.Event()

    def run(self):
        seq, per_put, started = 0, 10, time.time()
        puts = 0
        while not self.stopping.is_set():
            due = started + puts * per_put / self.rate
            time.sleep(max(0.0, due - time.time()))
            items = [LogItem(contents=[("chaos_seq", str(s)), ("chaos_ts", str(time.time())),
                                       ("msg", f"chaos log {s} héllo")])
                     for s in range(seq, seq + per_put)]
            key = format(random.getrandbits(128), "032x")
            while not self.stopping.is_set():
                with self.lock:
                    try:
                        self.client.put_logs(PutLogsRequest(PROJECT, LOGSTORE, "", "chaos",
                                                            items, hashKey=key))
                        ok = True
                    except Exception as e:  # noqa: BLE001 - the emulator is down: try again
                        ok = False
                        self.last_error = str(e)
                if ok:
                    now = time.time()
                    for s in range(seq, seq + per_put):
                        self.written[s] = now
                    seq += per_put
                    puts += 1
                    break
                self.failures += 1
                time.sleep(0.2)


class Instance:
    """One `shipper run`; `netns` runs it inside that namespace."""

    def __init__(self, name, shipper, config, netns, out_dir):
        self.name, self.shipper, self.config, self.netns = name, shipper, config, netns
        self.out = open(os.path.join(out_dir, f"{name}.log"), "ab")
        self.proc = None
        self.max_rss_kib = 0
        self.starts = 0
        self.stopped = False  # SIGSTOPped
        self.start()

    def start(self):
        cmd = [self.shipper, "run", "-c", self.config, "--progress", "never",
               "--log-format", "json", "--shutdown-timeout", "20s"]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        env = dict(os.environ, SLS_AK_ID=AK_ID, SLS_AK_KEY=AK_KEY, SHIPPER_HEC_TOKEN=HEC_TOKEN)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.out, stderr=self.out)
        self.starts += 1

    def sample_rss(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.max_rss_kib = max(self.max_rss_kib, int(line.split()[1]))
        except OSError:
            pass

    def signal(self, sig):
        self.sample_rss()
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class Net:
    """A namespace joined to the host by a veth pair; the host side's address serves all."""

    def __init__(self, tag):
        n = os.getpid() % 200 + 20
        self.ns = f"chaos-{tag}-{os.getpid()}"
        self.host_if, self.ns_if = f"chH{os.getpid()}", f"chN{os.getpid()}"
        self.host_addr, self.ns_addr = f"10.219.{n}.1", f"10.219.{n}.2"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.ns)
        sh("ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.ns_addr}/30", "dev", self.ns_if)
        sh("ip", "-n", self.ns, "link", "set", self.ns_if, "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")

    def link(self, up):
        sh("ip", "-n", self.ns, "link", "set", self.ns_if, "up" if up else "down")

    def remove(self):
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.ns, check=False)


class Tmpfs:
    """The dead-letter directory: a tmpfs whose size the schedule shrinks and grows."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "size=8m", "chaos-dlq", path)

    def used(self):
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def resize(self, size):
        sh("mount", "-o", f"remount,size={size}", self.path)

    def remove(self):
        sh("umount", self.path, check=False)


def config_text(endpoint, hec_url, plugin, dead_letter, name, ledger):
    return f"""[source]
endpoint = "{endpoint}"
project = "{PROJECT}"
logstore = "{LOGSTORE}"
consumer_group = "{GROUP}"
consumer_name = "{name}"
start = "begin"
heartbeat_interval = "{HEARTBEAT}"
timeout = {GROUP_TIMEOUT}

[plugin]
path = "{plugin}"
watch = false

[dead_letter]
path = "{dead_letter}"

[ledger]
path = "{ledger}"

[sink]
type = "hec"
endpoint = "{hec_url}"
batch_max_bytes = 65536
batch_linger_ms = 200
request_timeout_ms = 10000

[sink.retry]
initial_backoff_ms = 100
max_backoff_ms = 2000
"""


class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.clock = Clock()
        self.work = tempfile.mkdtemp(prefix="shipper-chaos-")
        self.cleanups = []
        self.events = []  # (t, fault, detail)
        self.counts = Counter()

    def setup(self):
        a = self.args
        self.net = Net("n")
        self.cleanups.append(self.net.remove)
        host = self.net.host_addr
        self.dlq = Tmpfs(os.path.join(self.work, "dead-letters"))
        self.cleanups.append(self.dlq.remove)
        fault_file = os.path.join(self.work, "emulator-faults")
        self.emulator = Emulator(a.shipper, host, free_port(host), os.path.join(self.work, "sls"),
                                 fault_file, open(os.path.join(self.work, "emulator.log"), "ab"))
        self.cleanups.append(lambda: self.emulator.proc.poll() is None and self.emulator.stop())
        endpoint = f"http://{self.emulator.cmd[3]}"
        self.receiver = Receiver(host, free_port(host), self.clock,
                                 random.Random(a.seed ^ 0x5EED))
        self.instances = []
        for i in range(a.instances):
            name = f"shipper-{i}"
            cfg = os.path.join(self.work, f"{name}.toml")
            with open(cfg, "w") as f:
                f.write(config_text(endpoint, self.receiver.url(), a.plugin,
                                    os.path.join(self.dlq.path, f"{name}.jsonl"), name,
                                    os.path.join(self.work, "ledgers", f"{name}.jsonl")))
            self.instances.append(Instance(name, a.shipper, cfg, self.net.ns if i == 0 else None,
                                           self.work))
        self.cleanups.insert(0, self.stop_instances)
        self.writer = Writer(endpoint, a.rate)
        self.writer.start()
        threading.Thread(target=self.sample, daemon=True).start()
        log(f"work dir {self.work}; emulator {endpoint}; HEC {self.receiver.url()}; "
            f"{a.instances} instances ({self.instances[0].name} in namespace {self.net.ns})")

    def sample(self):
        while True:
            for inst in self.instances:
                if inst.proc.poll() is None:
                    inst.sample_rss()
            time.sleep(1)

    def stop_instances(self):
        for inst in self.instances:
            if inst.proc.poll() is None:
                inst.proc.send_signal(signal.SIGCONT)
                inst.signal(signal.SIGTERM)
        for inst in self.instances:
            if inst.wait(40) is None:
                inst.proc.kill()
                inst.proc.wait()

    # --- faults -------------------------------------------------------------------------
    def pick_instance(self):
        return self.rng.choice(self.instances)

    def fault(self, name):
        rng = self.rng
        self.counts[name] += 1
        # Each occurrence its own label ("kill9#3"), so its duplicates can be held to the
        # per-fault bound of docs/reliability.md §2.
        self.clock.set(f"{name}#{self.counts[name]}")
        t0 = time.time()
        detail = ""
        if name == "kill9":
            inst = self.pick_instance()
            inst.signal(signal.SIGKILL)
            inst.wait(10)
            time.sleep(rng.uniform(1, 5))
            inst.start()
            detail = inst.name
        elif name == "sigterm":
            inst = self.pick_instance()
            inst.signal(signal.SIGTERM)
            code = inst.wait(40)
            if code is None:
                inst.proc.kill()
                inst.proc.wait()
            time.sleep(rng.uniform(1, 3))
            inst.start()
            detail = f"{inst.name} exit {code}"
        elif name == "sigstop":
            inst = self.pick_instance()
            inst.signal(signal.SIGSTOP)
            time.sleep(GROUP_TIMEOUT + rng.uniform(3, 10))
            inst.signal(signal.SIGCONT)
            detail = inst.name
        elif name == "partition":
            self.net.link(False)
            time.sleep(30)
            self.net.link(True)
            detail = self.instances[0].name
        elif name == "emulator_kill9":
            with self.writer.lock:
                self.emulator.kill9()
                time.sleep(rng.uniform(1, 4))
                self.emulator.start()
            self.emulator.restarts += 1
        elif name == "emulator_5xx":
            self.emulator.faults("pull 503 0.5\npull 500 0.2\nheartbeat 500 0.3\n"
                                 "checkpoint 503 0.3\ncursor 500 0.3\n")
            time.sleep(rng.uniform(10, 20))
            self.emulator.faults("")
        elif name == "emulator_quota":
            self.emulator.faults("pull quota 0.8\ncheckpoint quota 0.2\n")
            time.sleep(rng.uniform(10, 20))
            self.emulator.faults("")
        elif name == "hec_outage":
            self.receiver.stop()
            time.sleep(rng.uniform(10, 20))
            self.receiver.start()
        elif name == "hec_503":
            self.receiver.set(p503=0.8)
            time.sleep(rng.uniform(10, 20))
            self.receiver.set(p503=0.0)
        elif name == "hec_slow":
            self.receiver.set(slow=rng.uniform(2, 4))
            time.sleep(rng.uniform(10, 20))
            self.receiver.set(slow=0.0)
        elif name == "dead_letter_full":
            # Room for a few entries only (one is about 700 bytes); refuse event 0 of half the
            # requests meanwhile.
            self.dlq.resize(self.dlq.used() + 8 * 1024)
            self.receiver.set(reject=0.5)
            time.sleep(rng.uniform(15, 25))
            self.receiver.set(reject=0.0)
            full = self.dead_letter_waits()
            self.dlq.resize(self.dlq.used() + 32 * 1024 * 1024)
            detail = f"{full} dead-letter write refusals logged"
        else:
            raise ValueError(name)
        self.events.append((t0, name, detail))
        log(f"fault {name} {detail} ({time.time() - t0:.0f} s)")

    def dead_letter_waits(self):
        n = 0
        for inst in self.instances:
            with open(inst.out.name, "rb") as f:
                n += f.read().count(b"cannot write the dead-letter file")
        return n

    def schedule(self):
        """Faults in seeded order: each type once (shuffled) before any repeats."""
        order = []
        while True:
            if not order:
                order = FAULTS[:]
                self.rng.shuffle(order)
            yield order.pop()

    # --- the run ------------------------------------------------------------------------
    def run(self):
        a = self.args
        self.started = int(time.time()) - 1
        self.setup()
        end = time.time() + a.minutes * 60
        time.sleep(10)
        faults = self.schedule()
        while time.time() < end:
            self.fault(next(faults))
            for inst in self.instances:
                if inst.proc.poll() is not None and inst.proc.returncode is not None:
                    log(f"{inst.name} exited with {inst.proc.returncode}; restarting it")
                    self.counts["unexpected_exit"] += 1
                    inst.start()
            time.sleep(self.rng.uniform(3, 10))
        self.clock.set("drain")
        self.writer.stopping.set()
        self.writer.join()
        written = dict(self.writer.written)
        log(f"writes stopped at {len(written)} logs; waiting for every one to arrive")
        deadline = time.time() + a.drain_seconds
        while time.time() < deadline:
            missing = self.missing(written)
            if not missing:
                break
            time.sleep(2)
        time.sleep(3)  # late duplicates of the last batches
        self.stop_instances()
        gap = self.reconcile()
        return self.report(written) or gap

    def reconcile(self):
        """`shipper reconcile` over the run's window with every instance's ledger: 1 on a gap."""
        cmd = [self.args.shipper, "reconcile", "-c", self.instances[0].config,
               "--from", str(self.started), "--to", str(int(time.time()) + 1),
               "--ledger", os.path.join(self.work, "ledgers")]
        env = dict(os.environ, SLS_AK_ID=AK_ID, SLS_AK_KEY=AK_KEY)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        print(f"=== reconcile (exit {r.returncode})\n{r.stdout}{r.stderr}", flush=True)
        return 0 if r.returncode == 0 else 1

    def dead_lettered(self):
        seqs = Counter()
        for name in os.listdir(self.dlq.path):
            with open(os.path.join(self.dlq.path, name), "rb") as f:
                for line in f:
                    for m in SEQ_RE.finditer(line):
                        seqs[int(m.group(1))] += 1
        return seqs

    def missing(self, written):
        with self.receiver.lock:
            got = set(self.receiver.copies)
        dl = self.dead_lettered()
        return [s for s in written if s not in got and s not in dl]

    def report(self, written):
        with self.receiver.lock:
            copies = {s: list(c) for s, c in self.receiver.copies.items()}
        dl = self.dead_lettered()
        delivered = sum(len(c) for c in copies.values())
        unique = len(copies)
        lost = [s for s in written if s not in copies and s not in dl]
        unknown = [s for s in copies if s not in written]
        dups_by_occurrence = Counter()
        for s, c in copies.items():
            for _, fault in sorted(c)[1:]:
                dups_by_occurrence[fault] += 1
        dups_by_fault = Counter()
        for label, n in dups_by_occurrence.items():
            dups_by_fault[label.split("#")[0]] += n
        over_bound = self.over_bound(dups_by_occurrence)
        # A log both dead-lettered and delivered is one duplicate; each extra entry another.
        dl_dups = sum(n - 1 for n in dl.values()) + sum(1 for s in dl if s in copies)
        duplicates = delivered - unique + dl_dups
        lag = max((min(t for t, _ in copies[s]) - written[s] for s in written if s in copies),
                  default=0.0)
        lines = [
            "",
            "=== chaos figures",
            f"seed                 {self.args.seed}",
            f"minutes              {self.args.minutes}",
            f"instances            {len(self.instances)} (shards {SHARDS}, writes {self.args.rate}/s)",
            f"logs written         {len(written)}",
            f"events delivered     {delivered} ({unique} distinct logs)",
            f"dead-lettered        {sum(dl.values())} entries ({len(dl)} distinct logs)",
            f"lost                 {len(lost)}",
            f"duplicates           {duplicates} ({100.0 * duplicates / max(1, delivered):.2f} % of delivered)",
            f"unknown events       {len(unknown)}",
            f"max lag              {lag:.1f} s (write acknowledged -> first arrival)",
            f"HEC requests         {dict(self.receiver.requests)}",
            f"writer retries       {self.writer.failures}",
            "faults (count, duplicates blamed on it = arrived while it was the latest fault):",
        ]
        for name in FAULTS + ["none", "drain"]:
            if self.counts[name] or dups_by_fault[name]:
                most = max((n for label, n in dups_by_occurrence.items()
                            if label.split("#")[0] == name), default=0)
                lines.append(f"  {name:<18} x{self.counts[name]:<3} duplicates "
                             f"{dups_by_fault[name]:<6} (most after one: {most})")
        if dl_dups:
            lines.append(f"  {'(dead-letter)':<18}      duplicates {dl_dups}")
        lines.append("max RSS per instance:")
        for inst in self.instances:
            lines.append(f"  {inst.name:<12} {inst.max_rss_kib / 1024:.1f} MiB over {inst.starts} starts")
        worst = max(dups_by_occurrence.items(), key=lambda kv: kv[1] / self.bound(kv[0]),
                    default=None)
        if worst:
            lines.append(f"worst fault vs bound {worst[0]}: {worst[1]} duplicates, bound "
                         f"{self.bound(worst[0])} (docs/reliability.md §2)")
        for label, n, bound in over_bound:
            lines.append(f"OVER BOUND: {label} delivered {n} duplicates, bound {bound}")
        share = duplicates / max(1, delivered)
        if share > DUPLICATE_BUDGET:
            lines.append(f"OVER BUDGET: duplicates are {100 * share:.2f} % of delivered, "
                         f"budget {100 * DUPLICATE_BUDGET:.0f} %")
        if self.counts["unexpected_exit"]:
            lines.append(f"unexpected exits     {self.counts['unexpected_exit']}")
        if lost:
            lines.append(f"LOST (first 20): {sorted(lost)[:20]}")
        lines.append(f"replay: bash tests/chaos/run.sh --minutes {self.args.minutes} --seed {self.args.seed}")
        print("\n".join(lines), flush=True)
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"seed": self.args.seed, "minutes": self.args.minutes,
                           "written": len(written), "delivered": delivered, "lost": len(lost),
                           "duplicates": duplicates, "duplicates_by_fault": dups_by_fault,
                           "duplicates_by_occurrence": dups_by_occurrence,
                           "over_bound": over_bound,
                           "faults": self.counts, "max_lag_s": lag,
                           "max_rss_mib": {i.name: i.max_rss_kib / 1024 for i in self.instances}},
                          f, indent=1)
        if not written or not delivered:
            print(f"nothing was {'written' if not written else 'delivered'}: the run proves "
                  f"nothing (last write error: {self.writer.last_error})", flush=True)
            return 1
        return 1 if lost or over_bound or share > DUPLICATE_BUDGET else 0

    def bound(self, label):
        """Duplicates one fault occurrence may cost (docs/reliability.md §2): every shard
        moved, each re-sending its sends in flight plus what it had read ahead (at this
        run's trickle a caught-up reader holds one answer at most), each as large as the
        largest request the receiver accepted while that fault was the latest."""
        largest = max(1, self.receiver.largest[label])
        return SHARDS * (SENDS_IN_FLIGHT + 1) * largest

    def over_bound(self, dups_by_occurrence):
        return [(label, n, self.bound(label)) for label, n in sorted(dups_by_occurrence.items())
                if n > self.bound(label)]

    def cleanup(self):
        for c in self.cleanups:
            try:
                c()
            except Exception as e:  # noqa: BLE001 - clean up the rest regardless
                log(f"cleanup: {e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--instances", type=int, default=3)
    p.add_argument("--rate", type=float, default=200, help="logs written per second")
    p.add_argument("--drain-seconds", type=float, default=180)
    p.add_argument("--shipper", required=True)
    p.add_argument("--plugin", required=True)
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    # Background shells start us with SIGINT ignored: take both back so cleanup always runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    log(f"seed {args.seed} ({args.minutes} min)")
    chaos = Chaos(args)
    code = 2
    try:
        code = chaos.run()
    finally:
        chaos.cleanup()
        if not args.keep and code == 0:
            subprocess.run(["rm", "-rf", chaos.work])
        else:
            log(f"logs kept in {chaos.work}")
    sys.exit(code)


if __name__ == "__main__":
    main()

"""A real single-node Slurm cluster for tests, started by hand without systemd.

Why this exists: the sbatch scripts in ``slurm/`` are only worth shipping if a
real ``sbatch`` runs them.  The fixture starts a private ``munged`` (own key and
socket, so it never touches a system munge), ``slurmctld`` and ``slurmd`` from
the Debian packages (installed by ``.ci/setup-slurm.sh``), all configured by a
private ``slurm.conf`` on free ports.  No cgroups are needed: process tracking
is ``proctrack/linuxproc`` and task binding is ``task/none``.  There is no
accounting database, so job states come from ``scontrol`` (finished jobs stay
listed for ``MinJobAge`` seconds).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.processes import free_port

PROGRAMS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol", "scancel")
#: job states after which a job will not change any more
FINAL_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}


class SlurmError(RuntimeError):
    """The test cluster did not start or a Slurm command failed; carries the daemon logs."""


@dataclass
class SlurmCluster:
    """Handle on the running test cluster: environment plus job helpers."""

    root: Path
    env: dict[str, str]
    node: str
    cpus: int
    processes: list[subprocess.Popen] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    #: prepended to every client command (``nsenter --net=...`` for the two-node cluster)
    prefix: tuple[str, ...] = ()
    #: network namespaces to delete once the daemons are gone
    namespaces: list[str] = field(default_factory=list)

    def run(self, *args: str, cwd: str | Path | None = None) -> str:
        """Run a Slurm client command against this cluster and return its stdout."""
        proc = subprocess.run(
            [*self.prefix, *args], env=self.env, cwd=cwd, capture_output=True, text=True, timeout=60
        )
        if proc.returncode != 0:
            raise SlurmError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def sbatch(
        self,
        script: str | Path,
        *script_args: str,
        options: tuple[str, ...] = (),
        cwd: str | Path,
        env: dict[str, str] | None = None,
    ) -> str:
        """Submit ``script`` with sbatch ``options`` before it; return the job id.

        ``env`` adds variables to the job's environment (sbatch exports the
        submitting environment to the job by default, as on a real cluster).
        """
        command = [*self.prefix, "sbatch", "--parsable", *options, str(script), *script_args]
        proc = subprocess.run(
            command,
            env={**self.env, **(env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise SlurmError(f"sbatch failed ({proc.returncode}): {proc.stderr.strip()}")
        job_id = proc.stdout.strip().split(";")[0]
        self.submitted.append(job_id)
        return job_id

    def states(self, job_id: str) -> dict[str, dict[str, str]]:
        """Fields of every record of a job (one per array task), keyed by its JobId."""
        text = self.run("scontrol", "-o", "show", "job", job_id)
        records = {}
        for line in text.splitlines():
            fields = dict(re.findall(r"(\S+?)=(\S*)", line))
            if "JobId" in fields:
                key = fields["JobId"]
                if fields.get("ArrayTaskId"):
                    key = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"
                records[key] = fields
        return records

    def wait(self, job_id: str, timeout: float = 180.0) -> dict[str, dict[str, str]]:
        """Block until every record of the job reached a final state; return the records.

        A pending array shows one record for its not-yet-started tasks (e.g.
        ``ArrayTaskId=1-3``); it is not final, so waiting continues until each
        task has its own finished record.
        """
        deadline = time.monotonic() + timeout
        while True:
            records = self.states(job_id)
            if records and all(r["JobState"] in FINAL_STATES for r in records.values()):
                return records
            if time.monotonic() > deadline:
                summary = {k: r["JobState"] for k, r in records.items()}
                raise SlurmError(f"job {job_id} not finished after {timeout:.0f} s: {summary}")
            time.sleep(0.5)

    def logs(self) -> str:
        """Tails of the daemon logs and outputs, for failure messages."""
        parts = []
        for path in sorted([*self.root.glob("*.log"), *self.root.glob("*.out")]):
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-30:])
            parts.append(f"--- {path.name} (tail) ---\n{tail}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel our jobs, then stop the daemons we started (newest first)."""
        if self.submitted:
            subprocess.run(
                [*self.prefix, "scancel", *self.submitted], env=self.env, capture_output=True
            )
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in reversed(self.namespaces):  # takes the veths and the bridge with it
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _which(name: str) -> str | None:
    """Find a program on PATH or in the sbin dirs, where Debian puts the daemons."""
    return shutil.which(
        name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )


def _memory_mib() -> int:
    """Memory slurmd will find, less a margin (a node claiming more is drained)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10
    raise SlurmError("cannot read MemTotal from /proc/meminfo")


@dataclass(frozen=True)
class Node:
    """One slurmd: its NodeName (also its hostname) and the address slurmctld reaches it on."""

    name: str
    addr: str
    cpus: int


def write_config(root: Path, controller: str, controller_addr: str, nodes: list[Node]) -> Path:
    """Write the private slurm.conf of a cluster living under ``root``.

    ``%n`` (the node name) keeps the spool, pid and log files of several slurmds apart.
    ``cred_expire`` (a step credential's lifetime, default 120 s) is also how long a
    requeued job waits before it may start again; 15 s keeps the requeue test from
    idling two minutes while leaving slurmd ample time to check a credential.  Such a
    job is then started by the next periodic scheduling pass (every 30-60 s by
    default), hence the 2 s intervals.
    """
    (root / "state").mkdir()
    for node in nodes:
        (root / "spool" / node.name).mkdir(parents=True)
    memory = _memory_mib() // len(nodes)
    node_lines = "\n".join(
        f"NodeName={n.name} NodeAddr={n.addr} NodeHostname={n.name} CPUs={n.cpus} "
        f"RealMemory={memory} State=UNKNOWN"
        for n in nodes
    )
    conf = root / "slurm.conf"
    conf.write_text(
        f"""\
ClusterName=leapt-test
SlurmctldHost={controller}({controller_addr})
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket,cred_expire=15
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
MinJobAge=3600
{node_lines}
PartitionName=debug Nodes={",".join(n.name for n in nodes)} Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf


def _start(
    cluster: SlurmCluster, *command: str, label: str = "", wrap: tuple[str, ...] = ()
) -> None:
    """Start a daemon in the foreground (-D/-F), its own output going to ``<label>.out``.

    ``wrap`` runs it inside namespaces; every wrapper execs, so the pid we
    keep (and later stop) is the daemon's own.
    """
    program = _which(command[0]) or command[0]
    with open(cluster.root / f"{label or Path(command[0]).name}.out", "w") as out:
        proc = subprocess.Popen(
            [*wrap, program, *command[1:]],
            env=cluster.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    cluster.processes.append(proc)


def _wait_for(cluster: SlurmCluster, what: str, check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in cluster.processes:
            if proc.poll() is not None:
                raise SlurmError(f"{proc.args[0]} exited ({proc.returncode})\n{cluster.logs()}")
        if check():
            return
        time.sleep(0.5)
    raise SlurmError(f"timed out waiting for {what}\n{cluster.logs()}")


def _start_munged(cluster: SlurmCluster) -> None:
    """A private munged: its unix socket is a file, so every network namespace reaches it."""
    root = cluster.root
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    socket_path = root / "munge.socket"
    _start(
        cluster,
        "munged",
        "--foreground",
        # pytest's tmp dirs are private (0700); munged only warns about that
        # with --force, and every client here runs as the same user anyway
        "--force",
        f"--socket={socket_path}",
        f"--key-file={key}",
        f"--pid-file={root}/munged.pid",
        f"--seed-file={root}/munged.seed",
        f"--log-file={root}/munged.log",
    )
    _wait_for(cluster, "munged", socket_path.exists)


def _wait_idle(cluster: SlurmCluster, count: int) -> None:
    def nodes_idle() -> bool:
        proc = subprocess.run(
            [*cluster.prefix, "sinfo", "-h", "-N", "-o", "%T"],
            env=cluster.env,
            capture_output=True,
            text=True,
        )
        return proc.returncode == 0 and proc.stdout.split() == ["idle"] * count

    _wait_for(cluster, f"{count} node(s) to become idle in sinfo", nodes_idle)


def _client_env(conf: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    env["SLURM_CONF"] = str(conf)
    return env


def start_cluster(root: Path) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under ``root``; return once the node is idle."""
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    conf = write_config(root, node, "127.0.0.1", [Node(node, "127.0.0.1", cpus)])
    cluster = SlurmCluster(root=root, env=_client_env(conf), node=node, cpus=cpus)
    try:
        _start_munged(cluster)
        _start(cluster, "slurmctld", "-D", "-i")
        _start(cluster, "slurmd", "-D", "-N", node)
        _wait_idle(cluster, 1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


#: the private subnet of the two-node cluster; it exists only inside its namespaces
SUBNET = "10.211.7"
#: the interface name of each node's end of its veth pair
NODE_IFNAME = "eth0"


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SlurmError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


def _enter(netns: str) -> tuple[str, ...]:
    """Run in network namespace ``netns``.

    nsenter, not ``ip netns exec``: the latter also remounts /sys for the
    namespace, which hides /sys/fs/cgroup that slurmd wants to see.
    """
    return ("nsenter", f"--net=/run/netns/{netns}")


def _in_namespace(netns: str, hostname: str) -> tuple[str, ...]:
    """Run in network namespace ``netns`` and a new UTS namespace named ``hostname``."""
    return (*_enter(netns), "unshare", "--uts", "sh", "-c",
            f'hostname {hostname} && exec "$0" "$@"')  # fmt: skip


def start_two_node_cluster(root: Path) -> SlurmCluster:
    """Two slurmds, each in its own network + UTS namespace, and slurmctld in a third.

    The controller's namespace holds a bridge; each node is joined to it by a
    veth pair whose other end is the node's ``eth0``.  No namespace has a route
    out, so all cluster and job traffic stays inside these namespaces; client
    commands run in the controller's namespace (``cluster.prefix``).  munged
    stays in the root namespace: its socket is a file.
    """
    tag = f"lt{os.getpid()}"
    ctl = f"{tag}-ctl"
    nodes = [Node(f"leapt-n{i}", f"{SUBNET}.{10 + i}", 1) for i in range(2)]
    conf = write_config(root, "leapt-ctl", f"{SUBNET}.1", nodes)
    cluster = SlurmCluster(
        root=root,
        env=_client_env(conf),
        node=nodes[0].name,
        cpus=1,
        prefix=_enter(ctl),
    )
    try:
        cluster.namespaces.append(ctl)
        _ip("netns", "add", ctl)
        _ip("-n", ctl, "link", "set", "lo", "up")
        _ip("-n", ctl, "link", "add", "br0", "type", "bridge")
        _ip("-n", ctl, "addr", "add", f"{SUBNET}.1/24", "dev", "br0")
        _ip("-n", ctl, "link", "set", "br0", "up")
        for i, node in enumerate(nodes):
            netns = f"{tag}-n{i}"
            cluster.namespaces.append(netns)
            _ip("netns", "add", netns)
            _ip("-n", ctl, "link", "add", f"veth{i}", "type", "veth",
                "peer", "name", NODE_IFNAME, "netns", netns)  # fmt: skip
            _ip("-n", ctl, "link", "set", f"veth{i}", "master", "br0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", netns, "addr", "add", f"{node.addr}/24", "dev", NODE_IFNAME)
            _ip("-n", netns, "link", "set", NODE_IFNAME, "up")
        _start_munged(cluster)
        _start(cluster, "slurmctld", "-D", "-i", wrap=_in_namespace(ctl, "leapt-ctl"))
        for i, node in enumerate(nodes):
            wrap = _in_namespace(f"{tag}-n{i}", node.name)
            _start(cluster, "slurmd", "-D", "-N", node.name, label=f"slurmd-{node.name}", wrap=wrap)
        _wait_idle(cluster, len(nodes))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def job_env() -> dict[str, str]:
    """Environment for the jobs: our venv via LEAPT_VENV, nothing from the network."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").is_file():
        pytest.skip(f"tests must run inside a virtual environment (sys.prefix={venv})")
    return {
        "LEAPT_VENV": str(venv),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _require_slurm() -> None:
    missing = [name for name in PROGRAMS if _which(name) is None]
    if missing:
        pytest.skip(
            f"Slurm/munge not installed (missing {', '.join(missing)}); run .ci/setup-slurm.sh"
        )
    if os.geteuid() != 0:
        pytest.skip("the test Slurm cluster runs slurmd, which must start jobs as root")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running one-node Slurm cluster; skipped when Slurm is not installed."""
    _require_slurm()
    root = tmp_path_factory.mktemp("slurm")
    cluster = start_cluster(root)
    try:
        yield cluster
    finally:
        cluster.stop()


def _skip_or_fail(reason: str) -> None:
    """Outside CI a missing capability skips with its reason; in CI it is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """Two slurmds in their own network/UTS namespaces (see start_two_node_cluster)."""
    _require_slurm()
    if any(_which(p) is None for p in ("ip", "unshare", "nsenter")):
        _skip_or_fail("`ip` (iproute2), `unshare` or `nsenter` (util-linux) not installed")
    probe = f"lt{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        _skip_or_fail(f"cannot create a network namespace: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    cluster = start_two_node_cluster(tmp_path_factory.mktemp("slurm2"))
    try:
        yield cluster
    finally:
        cluster.stop()

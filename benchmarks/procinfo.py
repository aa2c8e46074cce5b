"""
What the benchmark suite reads from the kernel: Linux C{/proc} only.

Memory is the sum of C{VmRSS} over a process and all its descendants (found
through C{/proc/PID/task/TID/children}; where the kernel lacks those files,
with psutil when it is installed, else by walking C{/proc/*/stat}).  For a
forking server that sum counts pages shared between the parent and its
children once per process, so it overstates what the tree really uses.

Connections held are counted from C{/proc/net/tcp}: established sockets whose
local port is the server's and that have an inode, that is, that the server
has accepted (a connection still waiting in the listen queue has none).
"""

from __future__ import annotations

import os
import platform
import resource
from typing import Callable, Dict, List, Optional, Sequence, Tuple

try:  # pragma: no cover - depends on the environment
    import psutil  # type: ignore[import-not-found,import-untyped,unused-ignore]
except ImportError:  # pragma: no cover
    psutil = None

TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


def raiseNofile(needed: int) -> int:
    """
    Raise this process's open-file limit to at least C{needed} if it can
    (raising the hard limit needs root); return the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    for limits in ((needed, max(hard, needed)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofileReachable(needed: int) -> Tuple[bool, str]:
    """
    Whether a child process could raise its open-file limit to C{needed}.

    @return: C{(possible, explanation)}.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard >= needed:
        return True, f"hard limit {hard}"
    if os.geteuid() == 0:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                nrOpen = int(f.read())
        except (OSError, ValueError):
            nrOpen = 1048576
        if nrOpen >= needed:
            return True, f"hard limit {hard}, raised as root (fs.nr_open {nrOpen})"
        return False, f"fs.nr_open is {nrOpen}, below {needed}"
    return False, f"open-file hard limit (ulimit -Hn) is {hard}, below {needed}, and only root may raise it"


def _tcpRows() -> List[List[str]]:
    rows: List[List[str]] = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f, None)
                rows.extend(line.split() for line in f)
        except OSError:
            continue
    return rows


def _localPort(row: List[str]) -> int:
    return int(row[1].rsplit(":", 1)[1], 16)


def isListening(port: int) -> bool:
    """
    Whether some socket listens on TCP port C{port}.
    """
    return any(row[3] == TCP_LISTEN and _localPort(row) == port for row in _tcpRows() if len(row) > 9)


def acceptedCount(port: int) -> int:
    """
    How many established connections to local port C{port} a server has
    accepted.
    """
    # The kernel lists its tables while they change: a socket may be listed
    # twice.  Count each connection (its pair of addresses) once.
    return len(
        {
            (row[1], row[2])
            for row in _tcpRows()
            if len(row) > 9 and row[3] == TCP_ESTABLISHED and row[9] != "0" and _localPort(row) == port
        }
    )


def listenDrops() -> Dict[str, int]:
    """
    The kernel's counters of connections a full listen queue dropped.
    """
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return {k: int(table.get(k, 0)) for k in ("ListenOverflows", "ListenDrops")}
    return {}


def _parents() -> Dict[int, int]:
    parents: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name, in parentheses, may hold spaces: split after it.
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def treePids(root: int) -> List[int]:
    """
    C{root} and all its descendants that are alive.

    Children come from the tree's own C{/proc} entries where the kernel has
    them (the sampler runs every 50 ms beside the processes it measures, and
    a scan of every process on the machine cost it a noticeable share of a
    core); else from psutil, or from one scan of every process's parent.
    """
    childrenOf: Callable[[int], Sequence[int]]
    rootChildren: Optional[Sequence[int]] = _childrenFiles(root)
    if rootChildren is not None:

        def childrenOf(pid: int) -> Sequence[int]:
            return _childrenFiles(pid) or ()

    elif psutil is not None:  # pragma: no cover - depends on the environment
        try:
            return [root] + [p.pid for p in psutil.Process(root).children(recursive=True)]
        except psutil.Error:
            return []
    else:
        children: Dict[int, List[int]] = {}
        for pid, ppid in _parents().items():
            children.setdefault(ppid, []).append(pid)

        def childrenOf(pid: int) -> Sequence[int]:
            return children.get(pid, ())

        rootChildren = childrenOf(root)
    pids = [root]
    todo = list(rootChildren or ())
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(childrenOf(pid))
    return pids


def _childrenFiles(pid: int) -> Optional[List[int]]:
    """
    The children of C{pid}, from C{/proc/PID/task/TID/children} (kernels
    built with C{CONFIG_PROC_CHILDREN}); L{None} where the kernel has no
    such file.  An exited process has no children.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: List[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(child) for child in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task"):
                return []
            return None
        except OSError:
            continue
    return found


def children(pid: int) -> List[int]:
    """
    The child processes of C{pid} (none where the kernel cannot say).
    """
    return _childrenFiles(pid) or []


def rssKiB(pid: int) -> int:
    """
    The resident memory of one process (all its threads), in KiB; 0 if gone.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def treeRssKiB(root: int) -> Tuple[int, int]:
    """
    The summed resident memory of C{root}'s process tree, in KiB, and how
    many processes it has.
    """
    pids = treePids(root)
    return sum(rssKiB(pid) for pid in pids), len(pids)


def cpuSeconds(pid: int, reaped: bool = True) -> Optional[float]:
    """
    CPU time (user and system) of C{pid}, and (if C{reaped}) of the children
    it has reaped; C{None} if it is gone.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    ticks = sum(int(x) for x in fields[11 : 15 if reaped else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def ownCpuSeconds(pid: int) -> float:
    """
    CPU time (user and system) of C{pid} itself; 0 if it is gone.
    """
    return cpuSeconds(pid, reaped=False) or 0.0


def machine() -> Dict[str, str]:
    """
    The machine: cores, CPU model, memory, kernel.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    info = {"nproc": str(cores or "?"), "cpu": "?", "memory": "?", "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except (OSError, ValueError):
        pass
    return info

#!/usr/bin/env python3
"""Where a request's CPU goes: Switchyard under the harness's closed loop, sampled by
`perf`, each sample attributed to one activity of the request path.

    bash tests/bench/profile.sh [full|adapter] [SECONDS]

(`profile.sh` builds Switchyard with frame pointers into `target/fp`, which `perf`
needs to walk Rust stacks, then runs this.) The percentages are of the gateway core's
samples; the µs column spreads the CPU per request measured in the same run over them.
`perf` slows the gateway a little, so the throughput printed here is below the table's.
"""

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def stacks_of(perf_data):
    out = subprocess.run(["perf", "script", "-i", str(perf_data)], capture_output=True, text=True, check=True)
    stacks, cur = [], None
    for line in out.stdout.splitlines():
        if not line.strip():
            if cur is not None:
                stacks.append(cur)
                cur = None
            continue
        if not line[0].isspace():
            cur = []
            continue
        parts = line.strip().split(" ", 1)
        if len(parts) == 2 and cur is not None:
            cur.append(re.sub(r"\+0x[0-9a-f]+ \(.*\)$", "", parts[1]))
    if cur:
        stacks.append(cur)
    return stacks


def has(frames, *marks):
    return any(m in f for f in frames for m in marks)


def stage(frames):
    for mark, name in (("filter::on_request", "filter"), ("filter::on_response", "filter"),
                       ("route::rank", "router"), ("RouterInstance", "router"),
                       ("FilterInstance", "filter"), ("dispatch::", "adapter"),
                       ("AdapterInstance", "adapter")):
        if has(frames, mark):
            return name
    return "?"


def activity(frames):
    """The first matching rule wins; plugin work is split by pipeline stage."""
    if has(frames, "drop_in_place<wasmtime::runtime::store::StoreInner", "StoreOpaque as core::ops::drop::Drop"):
        return f"plugin instance teardown ({stage(frames)})"
    if has(frames, "TypedFunc<Params,Return>::call", "Func::call_raw"):
        return f"plugin call, arguments and results copied ({stage(frames)})"
    if has(frames, "instance::Guest<_>::new", "InstancePre<T>::instantiate", "Store<T>::try_new",
           "StoreData::new", "allocate_instance", "vm::instance::Instance::new", "ComponentInstance::new",
           "RouterInstance::new", "FilterInstance::new", "AdapterInstance::new"):
        return f"plugin instantiate ({stage(frames)})"
    if has(frames, "openai::parse_request"):
        return "request JSON parse"
    if has(frames, "openai::response_json", "server::json"):
        return "response JSON render"
    if has(frames, "do_writev", "__x64_sys_write", "__x64_sys_sendto"):
        return "kernel: socket writes, incl. loopback delivery and waking the peer"
    if has(frames, "__x64_sys_read", "__x64_sys_recvfrom", "__x64_sys_readv"):
        return "kernel: socket reads"
    if has(frames, "epoll_wait", "__schedule", "futex", "entry_SYSCALL", "asm_", "irq"):
        return "kernel: epoll, scheduling, interrupts"
    if has(frames, "hyper_util::client", "hyper::client", "role::Client"):
        return "upstream HTTP client (hyper-util pool, h1)"
    # What is left: the nearest known frame from the leaf says whose code it is.
    for f in frames:
        if f.startswith("switchyard::server::serve"):
            return "HTTP server (hyper h1)"
        if f.startswith("switchyard::"):
            return "Switchyard's own code (pipeline glue, headers, stats, auth, body reads)"
        if f.startswith(("hyper::", "<hyper::", "hyper_util::", "<hyper_util::")):
            return "HTTP server (hyper h1)"
        if f.startswith(("tokio::", "<tokio::")):
            break
    return "other (tokio, allocator, timers)"


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "full"
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    data = bench.WORK / f"perf-{kind}.data"
    try:
        bench.start_nginx()
        bench.start_mock()
        proc, target = bench.start_switchyard(kind)
        bench.oha(target, 3)
        perf = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-p", str(proc.pid),
                                 "-o", str(data), "--", "sleep", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0 = bench.cpu_seconds(proc.pid)
        run = bench.oha(target, seconds)
        c1 = bench.cpu_seconds(proc.pid)
        perf.wait()
    finally:
        bench.stop_all()
    per_req = (c1 - c0) / run["ok"] * 1e6
    stacks = stacks_of(data)
    counts = collections.Counter(activity(s) for s in stacks)
    print(f"switchyard-{kind} under perf: {run['rps']:,.0f} req/s, {per_req:.0f} µs CPU per request, "
          f"{len(stacks)} samples\n")
    print("| activity | share | per request |")
    print("|---|---|---|")
    for name, n in counts.most_common():
        print(f"| {name} | {n / len(stacks):.1%} | {n / len(stacks) * per_req:.0f} µs |")
    groups = collections.Counter()
    for name, n in counts.items():
        groups[name.split(" (")[0]] += n
    print("\n| summed over stages | share | per request |\n|---|---|---|")
    for name, n in groups.most_common():
        print(f"| {name} | {n / len(stacks):.1%} | {n / len(stacks) * per_req:.0f} µs |")


if __name__ == "__main__":
    if os.geteuid() != 0 and Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip() not in ("-1", "0", "1"):
        sys.exit("perf needs kernel.perf_event_paranoid <= 1 (or root) to sample another process")
    main()

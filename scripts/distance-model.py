#!/usr/bin/env python3
"""The distance model of docs/distance-model.md: SwapNbd's read and swap-in latency, and bench-swap.sh's time, at
network round trips this machine cannot make (its kernel has no netem), from per-request costs measured here on
loopback (scripts/bench-costs.sh), beside a local NVMe SSD.

    scripts/distance-model.py [COSTS.json] [--stat p50|mean] [--rtt 100,200,300,500] [--link-gbit 10] [--ssd-us 85]
                              [--bench-swap-seconds 137.5] [--bench-swap-file-seconds 62.1]
                              [--bench-swap-nbdkit-seconds 111.4] [--bench-swap-nolimit-seconds 5.2]
                              [--bench-swap-size 1GiB]
                              [--loss 0.01,0.1,0.5,2] [--rto-ms 200]

Without COSTS.json it uses the costs measured for docs/distance-model.md (MEASURED below). Prints markdown.

The model: a request that a donor serves costs what it costs on loopback, minus loopback's round trip, plus the
network's round trip and the time the reply takes on the wire. Every swap-in read that reaches the server is one
such request on the faulting process's critical path (the workload is one thread); writes are acknowledged once the
backup file has them and the frame is sent, so distance adds nothing to them until the link's bandwidth runs out.
bench-swap's time at a round trip is its time on loopback plus its swap-in reads times the extra round trip; the
reads are counted by bench-costs.sh's small swap run (how many reads a swapped-in page takes is a property of the
kernel's readahead and the workload, not of the machine's load) and scaled to bench-swap's size; the times on
loopback are bench-swap.sh's (README, a quiet machine).

Loss: a read waits for a retransmission timer when its request (one segment) or the last segment of its reply is
lost; with one segment in flight Linux's tail loss probe fires only after 2 SRTT + the minimum RTO (200 ms), so
either costs about 200 ms. A lost earlier segment of the reply is repaired within about a round trip (RACK, once a
later segment is acknowledged), and a lost ACK is covered by the next. So a read stalls with probability
1 - (1 - p)^2 for a loss p each way, for about the minimum RTO.
"""

import argparse
import json
import sys

# scripts/bench-costs.sh on the 2-CPU VM (see docs/distance-model.md for the run and its conditions).
MEASURED = json.loads("""
{
 "machine": "2 CPUs, kernel 6.18.44-fc-v1045, load 11.93 9.01 9.55",
 "build": "7a391d7",
 "fio_4k_randread_qd1_unix": {
  "memory_backend": {
   "mean_us": 39.328058924,
   "p50_us": 27.264,
   "p99_us": 138.24,
   "ios": 231707
  },
  "slab_loopback": {
   "mean_us": 152.646073523,
   "p50_us": 91.648,
   "p99_us": 1892.352,
   "ios": 58444
  },
  "slab_lab_link": {
   "mean_us": 448.83214274600005,
   "p50_us": 95.744,
   "p99_us": 6324.224,
   "ios": 20603
  }
 },
 "slab_loopback_cpu": {
  "server_us_per_request": 61.255218670864416,
  "donors_us_per_request": 47.053589761138866,
  "requests": 58444
 },
 "slab_loopback_status": {
  "bytes_written": 268435456,
  "bytes_remote": 268435456
 },
 "ping_rtt_us": {
  "loopback": 10,
  "lab_link": 15
 },
 "disk_4k_randread_qd1": {
  "device": "/dev/vda",
  "direct": {
   "mean_us": 216.384942346,
   "p50_us": 119.296,
   "p99_us": 3588.096
  },
  "cached": {
   "mean_us": 5.225284345,
   "p50_us": 2.192,
   "p99_us": 3.6
  }
 },
 "swap_run": {
  "size_bytes": 268435456,
  "factor": 4,
  "swapnbd_loopback": {
   "limit_bytes": 67108864,
   "device": "/sys/block/loop0",
   "memtest": "swapnbd-memtest: PASS pages=65536 size=256MiB touches=65536 mismatches=0 seconds=102.8 fill=7.9 touch=80.4 verify=14.5 swap_peak=199MiB cgroup=/process_api/af51fabb42a3fe151aa34aa91ae515d3/swapnbd-costs-13209-swapnbd limit=64MiB",
   "seconds": 102.8,
   "pages_swapped_in": 114177,
   "pages_swapped_out": 116245,
   "device_reads": 62907,
   "device_read_sectors": 913416,
   "device_writes": 52138,
   "device_write_sectors": 929960
  },
  "file": {
   "limit_bytes": 67108864,
   "device": "/sys/block/vda",
   "memtest": "swapnbd-memtest: PASS pages=65536 size=256MiB touches=65536 mismatches=0 seconds=41.5 fill=5.5 touch=26.3 verify=9.7 swap_peak=199MiB cgroup=/process_api/af51fabb42a3fe151aa34aa91ae515d3/swapnbd-costs-13209-file limit=64MiB",
   "seconds": 41.5,
   "pages_swapped_in": 112927,
   "pages_swapped_out": 114393,
   "device_reads": 60669,
   "device_read_sectors": 922560,
   "device_writes": 51682,
   "device_write_sectors": 954248
  },
  "nolimit": {
   "limit_bytes": 0,
   "device": "",
   "memtest": "swapnbd-memtest: PASS pages=65536 size=256MiB touches=65536 mismatches=0 seconds=4.2 fill=3.6 touch=0.5 verify=0.1 swap_peak=0MiB cgroup=/process_api/af51fabb42a3fe151aa34aa91ae515d3/swapnbd-costs-13209-nolimit limit=none",
   "seconds": 4.2,
   "pages_swapped_in": 0,
   "pages_swapped_out": 0,
   "device_reads": 0,
   "device_read_sectors": 0,
   "device_writes": 0,
   "device_write_sectors": 0
  }
 }
}
""")

# Bytes on the wire for one 4 KiB page read from a donor: a sealed page (4096 + 16 B tag), the daemon's frame header
# (16 B, docs/daemon-protocol.md), and per TCP segment (MSS 1448 with timestamps: three segments) 52 B of TCP/IP
# headers, 18 B of Ethernet header and FCS, 20 B of preamble and inter-frame gap.
REPLY_PAYLOAD_BYTES = 4096 + 16 + 16
SEGMENT_OVERHEAD_BYTES = 52 + 18 + 20
MSS = 1448


def wire_us(pages: float, gbit: float) -> float:
    """Time one reply of `pages` pages takes to leave the sender at `gbit` Gbit/s."""
    payload = REPLY_PAYLOAD_BYTES * pages
    segments = -(-payload // MSS)
    return (payload + segments * SEGMENT_OVERHEAD_BYTES) * 8 / (gbit * 1000)


def parse_size(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
    digits = text.rstrip("kKmMgGiIbB")
    return int(digits) * units[text[len(digits):].lower()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("costs", nargs="?", help="JSON from scripts/bench-costs.sh (default: the measured one)")
    parser.add_argument("--stat", choices=["p50", "mean"], default="p50",
                        help="which latency of the fio runs (default p50: on a loaded machine the mean measures the load)")
    parser.add_argument("--rtt", default="100,200,300,500", help="round trips to predict, µs (default 100,200,300,500)")
    parser.add_argument("--link-gbit", type=float, default=10.0, help="the donor link's rate, Gbit/s (default 10)")
    parser.add_argument("--ssd-us", type=float, default=85.0,
                        help="a local NVMe SSD's 4K random read latency, µs (default 85: cited in the doc)")
    parser.add_argument("--bench-swap-seconds", type=float, default=137.5,
                        help="bench-swap.sh's swapnbd time, donors on loopback (default 137.5, README)")
    parser.add_argument("--bench-swap-file-seconds", type=float, default=62.1,
                        help="bench-swap.sh's swap-file time (default 62.1, README)")
    parser.add_argument("--bench-swap-nbdkit-seconds", type=float, default=111.4,
                        help="bench-swap.sh's nbdkit memory time: the same attach path, no hop (default 111.4, README)")
    parser.add_argument("--bench-swap-nolimit-seconds", type=float, default=5.2,
                        help="bench-swap.sh's time without a limit (default 5.2, README)")
    parser.add_argument("--bench-swap-size", default="1GiB", help="bench-swap.sh's --size for those times (default 1GiB)")
    parser.add_argument("--loss", default="0.01,0.1,0.5,2", help="loss rates to predict, %% each way (default 0.01,0.1,0.5,2)")
    parser.add_argument("--rto-ms", type=float, default=200.0, help="the stall of one lost segment, ms (default 200: Linux's minimum RTO)")
    args = parser.parse_args()

    costs = MEASURED
    if args.costs:
        with open(args.costs, encoding="utf-8") as f:
            costs = json.load(f)
    if "fio_4k_randread_qd1_unix" not in costs:
        print("distance-model.py: no measured costs; run scripts/bench-costs.sh --out costs.json and pass the file",
              file=sys.stderr)
        return 2
    rtts = [float(r) for r in args.rtt.split(",")]
    key = "p50_us" if args.stat == "p50" else "mean_us"

    fio = costs["fio_4k_randread_qd1_unix"]
    l_mem = fio["memory_backend"][key]
    l_lo = fio["slab_loopback"][key]
    l_lab = fio["slab_lab_link"][key]
    rtt_lo = costs["ping_rtt_us"]["loopback"]
    rtt_lab = costs["ping_rtt_us"]["lab_link"]
    cpu = costs["slab_loopback_cpu"]
    disk = costs["disk_4k_randread_qd1"]["direct"][key]
    cached = costs["disk_4k_randread_qd1"]["cached"][key]
    swap = costs["swap_run"]
    nbd, file, nolimit = swap["swapnbd_loopback"], swap["file"], swap["nolimit"]

    pages_per_read = nbd["device_read_sectors"] * 512 / 4096 / nbd["device_reads"]
    file_pages_per_read = file["device_read_sectors"] * 512 / 4096 / file["device_reads"]
    scale = parse_size(args.bench_swap_size) / swap["size_bytes"]
    reads_bs = nbd["device_reads"] * scale
    file_reads_bs = file["device_reads"] * scale
    # Per swap-in read: bench-swap's time over the time without a limit, per read. This charges each read with its
    # share of everything swapping costs (swap-outs, reclaim), as a faulting process feels it.
    c_nbd = (args.bench_swap_seconds - args.bench_swap_nolimit_seconds) * 1e6 / reads_bs
    c_attach = (args.bench_swap_nbdkit_seconds - args.bench_swap_nolimit_seconds) * 1e6 / reads_bs
    c_file = (args.bench_swap_file_seconds - args.bench_swap_nolimit_seconds) * 1e6 / file_reads_bs
    # The same from the small swap run itself (its machine's load in it).
    small_nbd = (nbd["seconds"] - nolimit["seconds"]) * 1e6 / nbd["device_reads"]
    small_file = (file["seconds"] - nolimit["seconds"]) * 1e6 / file["device_reads"]
    # The kernel's swap-in path with a local disk, without the disk's own read time.
    kernel = c_file - disk

    out = []
    w = out.append
    w(f"Measured by scripts/bench-costs.sh ({costs.get('machine', '?')}; build {costs.get('build', '?')}); fio figures are {args.stat}:\n")
    w("| constant | value |")
    w("|---|--:|")
    w(f"| fio 4K randread QD1 over the Unix socket, memory backend (client → server → memory) | {l_mem:.0f} µs |")
    w(f"| the same, slab mode, 3 donors on loopback (sealed pages) | {l_lo:.0f} µs |")
    w(f"| the same, donors behind lab links (veth, no loss) | {l_lab:.0f} µs |")
    w(f"| → the daemon hop on loopback (slab − memory) | {l_lo - l_mem:.0f} µs |")
    w(f"| ping round trip: loopback / lab link | {rtt_lo:.0f} / {rtt_lab:.0f} µs |")
    w(f"| CPU per read, loopback slab run: server / donors (upper bounds: polling, timers) | {cpu['server_us_per_request']:.0f} / {cpu['donors_us_per_request']:.0f} µs |")
    w(f"| local disk 4K randread QD1: O_DIRECT / page cache | {disk:.0f} / {cached:.0f} µs |")
    w(f"| small swap run, {swap['size_bytes'] >> 20} MiB at 1/{swap['factor']}: swapnbd / file / no limit | "
      f"{nbd['seconds']:.1f} / {file['seconds']:.1f} / {nolimit['seconds']:.1f} s |")
    w(f"| swap-in reads that reached the device: swapnbd / file | {nbd['device_reads']} ({pages_per_read:.2f} pages each) / "
      f"{file['device_reads']} ({file_pages_per_read:.2f} pages each) |")
    w(f"| swap-out writes that reached the device (swapnbd run) | {nbd['device_writes']} ({nbd['device_write_sectors'] >> 3} pages) |")
    w(f"| pages swapped in / out during the swapnbd run (/proc/vmstat: the whole machine) | {nbd['pages_swapped_in']} / {nbd['pages_swapped_out']} |")
    w(f"| → per swap-in read in that run: swapnbd / file | {small_nbd:.0f} / {small_file:.0f} µs |")
    w("")
    w(f"From bench-swap.sh's times ({args.bench_swap_size}: swapnbd {args.bench_swap_seconds:g} s, nbdkit memory "
      f"{args.bench_swap_nbdkit_seconds:g} s, file {args.bench_swap_file_seconds:g} s, no limit {args.bench_swap_nolimit_seconds:g} s)"
      f" and the reads scaled ×{scale:g} ({reads_bs:.0f} swapnbd, {file_reads_bs:.0f} file): per swap-in read {c_nbd:.0f} µs"
      f" through SwapNbd, of which {c_attach:.0f} µs the attach path that nbdkit memory pays as well (kernel, nbdfuse,"
      f" loop device; no hop to a donor); {c_file:.0f} µs from the local disk, of which the kernel's path without the"
      f" disk {kernel:.0f} µs.\n")

    w(f"Predicted at {args.link_gbit:g} Gbit/s donor links (wire time of a 4K reply {wire_us(1, args.link_gbit):.1f} µs, "
      f"of an average swap-in read {wire_us(pages_per_read, args.link_gbit):.1f} µs); local NVMe SSD read {args.ssd_us:g} µs (cited):\n")
    w("| round trip | 4K read QD1 (fio) | ÷ NVMe SSD read | swap-in read | swap-in read from a local NVMe SSD "
      f"| bench-swap {args.bench_swap_size} | swap file on that SSD |")
    w("|--:|--:|--:|--:|--:|--:|--:|")
    ssd_swapin = kernel + args.ssd_us
    ssd_bench = args.bench_swap_file_seconds + file_reads_bs * (args.ssd_us - disk) / 1e6
    rows = [(f"loopback ({rtt_lo:.0f} µs, measured)", rtt_lo)] + [(f"{r:g} µs", r) for r in rtts]
    for label, r in rows:
        extra = r - rtt_lo
        wire1 = 0.0 if r == rtt_lo else wire_us(1, args.link_gbit)
        wire_read = 0.0 if r == rtt_lo else wire_us(pages_per_read, args.link_gbit)
        read = l_lo + extra + wire1
        swapin = c_nbd + extra + wire_read
        bench = args.bench_swap_seconds + reads_bs * (extra + wire_read) / 1e6
        w(f"| {label} | {read:.0f} µs | {read / args.ssd_us:.1f}× | {swapin:.0f} µs | {ssd_swapin:.0f} µs | {bench:.0f} s | {ssd_bench:.0f} s |")
    w("")
    breakeven = args.ssd_us + rtt_lo - l_lo
    w(f"Break-even round trip of a 4K read against the SSD's {args.ssd_us:g} µs: "
      + (f"{breakeven:.0f} µs" if breakeven > 0 else "none (loopback's read alone costs more)")
      + f" (= SSD − loopback read {l_lo:.0f} µs + loopback round trip {rtt_lo:.0f} µs). "
      f"bench-swap {args.bench_swap_size}: each µs of round trip adds {reads_bs / 1e6:.2f} s. Its swap-outs "
      f"({(nbd['device_write_sectors'] >> 3) * scale:.0f} pages) need "
      f"{(nbd['device_write_sectors'] >> 3) * scale * 4112 * 8 / (args.link_gbit * 1e9):.1f} s "
      f"of link time at {args.link_gbit:g} Gbit/s, overlapped with the run (writes do not wait for the donor).")
    w("")

    w(f"Loss (each way on the donor links): QD1 reads and bench-swap {args.bench_swap_size}, on loopback and at "
      f"{rtts[0]:g} µs; a stall costs {args.rto_ms:g} ms:\n")
    w(f"| loss % | reads that stall | mean 4K read QD1 | the same at {rtts[0]:g} µs | p99 | p99.9 | bench-swap {args.bench_swap_size} adds |")
    w("|--:|--:|--:|--:|--:|--:|--:|")
    far = l_lo + rtts[0] - rtt_lo + wire_us(1, args.link_gbit)
    for p in [float(x) / 100 for x in args.loss.split(",")]:
        stall = 1 - (1 - p) ** 2

        def percentile(tail: float) -> str:
            # The percentile that leaves `tail` of the reads above it is a stall once stalls are more than `tail`.
            if stall >= tail:
                return f"≈ {args.rto_ms:g} ms"
            if stall >= tail / 2:
                return f"{l_lo:.0f} µs or {args.rto_ms:g} ms (edge)"
            return f"≈ {l_lo:.0f} µs"

        w(f"| {p * 100:g} | {stall * 100:.2f} % | {l_lo + stall * args.rto_ms * 1000:.0f} µs | "
          f"{far + stall * args.rto_ms * 1000:.0f} µs | {percentile(0.01)} | {percentile(0.001)} | "
          f"{reads_bs * stall * args.rto_ms / 1000:.0f} s |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

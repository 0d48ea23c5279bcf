#!/bin/bash
# What a uprobe hit costs by the instruction it replaces: probed.c's
# functions, each with one bpftrace probe (an entry uprobe, or a
# uretprobe), in interleaved rounds. Needs root, cc and bpftrace.
#
#	sources/ebpf/bench/uprobecost/run.sh [rounds] [calls]
set -e
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O1 -o "$dir/probed" "$(dirname "$0")/probed.c"
rounds=${1:-3} n=${2:-20000}
for r in $(seq "$rounds"); do
	for m in none:f_sub: sub:f_sub:uprobe endbr:f_endbr:uprobe test:f_test:uprobe push:f_push:uprobe \
		nop:f_nop:uprobe nop5:f_nop5:uprobe uret-sub:f_sub:uretprobe uret-push:f_push:uretprobe; do
		IFS=: read -r kind fn probe <<<"$m"
		if [ -z "$probe" ]; then
			echo "round $r $kind $("$dir/probed" "$fn" "$n")"
			continue
		fi
		bpftrace -e "$probe:$dir/probed:$fn { @c = count(); }" >"$dir/bt.out" 2>&1 &
		bt=$!
		for _ in $(seq 100); do grep -q Attaching "$dir/bt.out" && break; sleep 0.1; done
		sleep 0.5
		echo "round $r $kind $("$dir/probed" "$fn" "$n")"
		kill -INT $bt
		wait $bt || true
		grep -q "@c: $n" "$dir/bt.out" || { echo "round $r $kind: the probe did not count $n calls:"; cat "$dir/bt.out"; }
	done
done

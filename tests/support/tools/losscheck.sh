#!/usr/bin/env bash
# Checks what a consumer received against what devices were told was stored.
#
#   losscheck.sh [--sent FILE] [--details N] ACKED CAPTURE
#
# ACKED    one "device dseq" per line: readings that got a 2xx.
# --sent   one "device dseq" per line: every reading ever posted, acknowledged
#          or not. A reading whose 2xx was lost (timeout, gateway killed after
#          the commit) may legitimately be delivered; it is not unexpected.
#          Without --sent, only ACKED readings are expected.
# CAPTURE  the consumer's "topic payload" lines (mosquitto_sub -v); payloads
#          as in docs/gateway.md: device, gateway seq, device dseq.
#
# Definitions, per device, in arrival order:
#   delivered               distinct (device, seq) messages
#   duplicated_raw          copies of a (device, seq) already received (the
#                           gateway republishes after a lost PUBACK)
#   duplicated_after_dedup  a dseq delivered again under another gateway seq
#   reordered               after dropping (device, seq) copies, a dseq lower
#                           than one already received
#   unexpected              delivered but never sent, no dseq, a payload that
#                           is not JSON, a topic naming another device, or a
#                           (device, seq) repeated with a different dseq
#   lost                    acknowledged but never delivered
#   seq_gaps                gateway seq numbers missing between the lowest and
#                           the highest received for a device
#
# Prints one summary line, then the first problems of each kind. Exit 0 when
# lost, unexpected, reordered and seq_gaps are all 0; 1 otherwise; 2 on a
# usage error.
set -euo pipefail

usage() {
  echo "usage: losscheck.sh [--sent FILE] [--details N] ACKED CAPTURE" >&2
  exit 2
}

sent=/dev/null
details=5
while [ $# -gt 0 ]; do
  case "$1" in
  --sent)
    [ $# -ge 2 ] || usage
    sent="$2"
    shift 2
    ;;
  --details)
    [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] || usage
    details="$2"
    shift 2
    ;;
  --help) usage ;;
  -*) usage ;;
  *) break ;;
  esac
done
[ $# -eq 2 ] || usage
acked="$1"
capture="$2"
for f in "$acked" "$sent" "$capture"; do
  [ -r "$f" ] || {
    echo "losscheck: cannot read $f" >&2
    exit 2
  }
done

# One "device seq dseq topic-device" line per captured message, in arrival
# order; "! ..." for a line that is not a telemetry message at all.
parse() {
  jq -R -r '
    (index(" ")) as $i
    | if $i == null then "! no-payload \(.)"
      else (.[:$i]) as $topic
        | (.[$i + 1:] | try fromjson catch null) as $p
        | ($topic | split("/")) as $parts
        | if ($p | type) != "object" then "! not-json \($topic)"
          elif ($p.device | type) != "string" or ($p.seq | type) != "number" then "! no-device-or-seq \($topic)"
          else "\($p.device) \($p.seq) \($p.dseq // "-") \(if ($parts | length) >= 3 then $parts[-2] else "-" end)"
          end
      end' "$capture"
}

parse | awk -v details="$details" '
  function note(kind, msg) {
    if (shown[kind]++ < details) problems = problems "  " kind ": " msg "\n"
  }
  FILENAME == ARGV[1] { if (NF >= 2) { ack[$1 " " $2] = 1; expected[$1 " " $2] = 1 } next }
  FILENAME == ARGV[2] { if (NF >= 2) expected[$1 " " $2] = 1; next }
  {
    raw++
    if ($1 == "!") { unexpected++; note("unexpected", $2 " " $3); next }
    dev = $1; seq = $2; dseq = $3; tdev = $4
    key = dev " " seq
    if (key in first) {
      dup_raw++
      if (first[key] != dseq) {
        unexpected++
        note("unexpected", dev " seq " seq " carried dseq " first[key] " and then " dseq)
      }
      next
    }
    first[key] = dseq
    delivered++
    if (!(dev in lo) || seq < lo[dev]) lo[dev] = seq
    if (!(dev in hi) || seq > hi[dev]) hi[dev] = seq
    nseq[dev]++
    if (tdev != dev) {
      unexpected++
      note("unexpected", dev " seq " seq " on the topic of " tdev)
    }
    if (dseq == "-") { unexpected++; note("unexpected", dev " seq " seq " has no dseq"); next }
    r = dev " " dseq
    if (!(r in expected)) { unexpected++; note("unexpected", dev " dseq " dseq " (seq " seq ") was never sent") }
    if (r in got) {
      dup_dedup++
      note("duplicated_after_dedup", dev " dseq " dseq " as seq " got[r] " and seq " seq)
      next
    }
    got[r] = seq
    if ((dev in last) && dseq + 0 < last[dev] + 0) {
      reordered++
      note("reordered", dev " dseq " dseq " (seq " seq ") arrived after dseq " last[dev])
    }
    if (!(dev in last) || dseq + 0 > last[dev] + 0) last[dev] = dseq
  }
  END {
    for (r in ack) {
      acknowledged++
      if (!(r in got)) { lost++; lostlist[lost] = r }
    }
    # Sorted, so the first lost readings shown are the lowest dseqs.
    n = lost; for (i = 2; i <= n; i++) {
      v = lostlist[i]; split(v, a, " ")
      for (j = i - 1; j >= 1; j--) {
        split(lostlist[j], b, " ")
        if (b[1] < a[1] || (b[1] == a[1] && b[2] + 0 <= a[2] + 0)) break
        lostlist[j + 1] = lostlist[j]
      }
      lostlist[j + 1] = v
    }
    for (i = 1; i <= n; i++) note("lost", lostlist[i])
    for (dev in nseq) {
      g = hi[dev] - lo[dev] + 1 - nseq[dev]
      if (g > 0) { gaps += g; note("seq_gap", dev " has " nseq[dev] " of seq " lo[dev] ".." hi[dev]) }
    }
    printf "losscheck: acknowledged=%d delivered=%d lost=%d duplicated_raw=%d duplicated_after_dedup=%d reordered=%d unexpected=%d seq_gaps=%d\n",
      acknowledged, delivered, lost, dup_raw, dup_dedup, reordered, unexpected, gaps
    printf "%s", problems
    exit (lost || unexpected || reordered || gaps) ? 1 : 0
  }' "$acked" "$sent" -

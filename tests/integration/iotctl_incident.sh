#!/usr/bin/env bash
# iotctl incident: the vulnerability and incident register with the CRA
# Art. 14 deadlines, on a fake clock (IOTCTL_NOW / --now): reports on time,
# overdue (and the exit status cron acts on), submitted late, closed; the
# drafts carry the fields the regulation asks for; bad input is refused
# and changes nothing.
. "$(dirname "$0")/lib.sh"

P="$T/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
H=3600
D=86400
T0=1801389600 # 2027-01-31T10:00:00Z: the month after it is short
export IOTCTL_NOW=$T0

expect_ok "pki init" ctl pki init
expect_ok "an empty register lists nothing overdue" ctl incident list --overdue
expect_eq "an empty register lists no entries" "[]" "$(ctl incident list --json | jq -c .)"

# --- an actively exploited vulnerability -------------------------------------------
expect_ok "open a vulnerability" ctl incident open --kind vulnerability \
  --title "EST accepts a replayed enrollment token" --severity high --exploited \
  --devices sensor-1,sensor-2 --versions 1.2.0 --member-states DE,FR --cve CVE-2027-0001
expect_eq "open prints the id alone" 1 "$OUT"
echo "$ERR" | grep -q "early-warning  due 2027-02-01T10:00:00Z" || fail "open shows no 24 h deadline: $ERR"
echo "$ERR" | grep -q "notification   due 2027-02-03T10:00:00Z" || fail "open shows no 72 h deadline: $ERR"
pass "open prints the 24 h and 72 h deadlines"

expect_ok "show --json" ctl incident show 1 --json
expect_eq "aware at defaults to now" "2027-01-31T10:00:00Z" "$(echo "$OUT" | jq -r .aware_at)"
expect_eq "early warning due 24 h later" "2027-02-01T10:00:00Z" \
  "$(echo "$OUT" | jq -r '.reports[] | select(.type=="early-warning") | .deadline')"
expect_eq "notification due 72 h later" "2027-02-03T10:00:00Z" \
  "$(echo "$OUT" | jq -r '.reports[] | select(.type=="notification") | .deadline')"
expect_eq "no final deadline before a fix" "null waiting" \
  "$(echo "$OUT" | jq -r '.reports[] | select(.type=="final") | "\(.deadline) \(.status)"')"

# On time: 23 hours in, nothing is overdue and cron is content.
expect_ok "23 h: list --overdue exits 0" ctl incident list --overdue --now $((T0 + 23 * H))
expect_eq "23 h: nothing overdue" "0" "$(ctl incident list --json --now $((T0 + 23 * H)) | jq '.[0].overdue')"
# Overdue: 25 hours in, the early warning is late; exit 3 for cron.
run ctl incident list --overdue --now $((T0 + 25 * H))
expect_eq "25 h: list --overdue exits 3" 3 "$RC"
echo "$OUT" | grep -Eq "^1 +vulnerability +open +high +yes " || fail "25 h: the entry is not listed: $OUT"
echo "$ERR" | grep -q "1 report is overdue" || fail "25 h: no count on stderr: $ERR"
pass "25 h: the overdue entry is listed with a count"
IOTCTL_NOW=$((T0 + 73 * H)) run ctl incident show 1 --json
expect_eq "73 h (IOTCTL_NOW): two reports overdue" "2 overdue overdue" \
  "$(echo "$OUT" | jq -r '"\(.overdue) \(.reports[0].status) \(.reports[1].status)"')"

# Submitted: the early warning on time, the notification late.
expect_ok "early warning submitted at 20 h" ctl incident update 1 --submitted early-warning \
  --submitted-at $((T0 + 20 * H)) --now $((T0 + 26 * H))
echo "$OUT" | grep -Eq "early-warning .* submitted +submitted 2027-02-01T06:00:00Z" ||
  fail "update does not show the submission: $OUT"
pass "update shows the early warning as submitted"
expect_ok "26 h: nothing overdue once it is submitted" ctl incident list --overdue --now $((T0 + 26 * H))
expect_ok "notification submitted at 80 h" ctl incident update 1 --submitted notification \
  --now $((T0 + 80 * H))
expect_eq "a notification after 72 h is submitted late" "submitted-late" \
  "$(ctl incident show 1 --json --now $((T0 + 80 * H)) | jq -r '.reports[1].status')"

# A fix is available on day 5: the final report falls due 14 days later.
expect_ok "fix available" ctl incident update 1 --fixed-at $((T0 + 5 * D)) \
  --corrective "firmware 1.2.1 refuses a used token" --now $((T0 + 5 * D))
expect_ok "show after the fix" ctl incident show 1 --json --now $((T0 + 5 * D))
expect_eq "mitigated once a fix is available" "mitigated" "$(echo "$OUT" | jq -r .state)"
expect_eq "final report due 14 days after the fix" "2027-02-19T10:00:00Z" \
  "$(echo "$OUT" | jq -r '.reports[2].deadline')"
expect_ok "day 19: final report still on time" ctl incident list --overdue --now $((T0 + 19 * D))
run ctl incident list --overdue --now $((T0 + 19 * D + 1))
expect_eq "day 19 + 1 s: the final report is overdue" 3 "$RC"

# --- drafts: the fields of Art. 14(2), and what is still to complete ----------------
expect_ok "early warning draft" ctl incident report 1 --type early-warning
for want in "Art. 14(2)(a)" "Deadline: 2027-02-01T10:00:00Z" "## Actively exploited" \
  "## Member States where the product" "DE,FR" "CVE-2027-0001" "single reporting platform"; do
  echo "$OUT" | grep -qF -- "$want" || fail "early warning draft lacks '$want': $OUT"
done
pass "early warning draft: legal basis, deadline, exploited, Member States"
expect_ok "notification draft (JSON)" ctl incident report 1 --type notification --json
expect_eq "notification draft: basis" "Regulation (EU) 2024/2847, Art. 14(2)(b)" \
  "$(echo "$OUT" | jq -r .legal_basis)"
for key in product nature corrective_measures user_measures sensitivity affected_versions; do
  echo "$OUT" | jq -e --arg k "$key" '.fields | has($k)' >/dev/null ||
    fail "notification draft has no field $key: $OUT"
done
pass "notification draft: product, nature, measures, sensitivity"
expect_eq "notification draft: what is missing is listed" '["nature","user_measures","sensitivity"]' \
  "$(echo "$OUT" | jq -c .missing)"
expect_ok "final report draft" ctl incident report 1 --type final --json
expect_eq "final draft: basis, corrective measures, actor missing" \
  "Regulation (EU) 2024/2847, Art. 14(2)(c)|firmware 1.2.1 refuses a used token|true" \
  "$(echo "$OUT" | jq -r '"\(.legal_basis)|\(.fields.corrective_measures)|\(.missing | index("malicious_actor") != null)"')"
expect_ok "user notice draft" ctl incident report 1 --type user-notice
echo "$OUT" | grep -qF "Art. 14(8)" || fail "user notice lacks its basis: $OUT"
echo "$OUT" | grep -qF "## Risk mitigation and corrective measures you can take" ||
  fail "user notice lacks the measures users can take: $OUT"
pass "user notice draft names Art. 14(8) and what users can do"

# --- a severe incident: final report one month after the notification ---------------
expect_ok "open a severe incident" ctl incident open --kind incident --severe \
  --title "gateway host compromised" --severity critical --malicious yes --aware-at $((T0 + H)) \
  --now $((T0 + 2 * H))
INC="$OUT"
expect_eq "second entry is 2" 2 "$INC"
expect_ok "incident early warning draft" ctl incident report "$INC" --type early-warning --json
expect_eq "incident early warning: unlawful or malicious, Art. 14(4)(a)" \
  "Regulation (EU) 2024/2847, Art. 14(4)(a)|yes" \
  "$(echo "$OUT" | jq -r '"\(.legal_basis)|\(.fields.unlawful_or_malicious | split(":")[0])"')"
expect_ok "incident notification submitted on 2 February" ctl incident update "$INC" \
  --submitted notification --now $((T0 + 2 * D))
expect_eq "final report one month after the notification (2 March)" "2027-03-02T10:00:00Z" \
  "$(ctl incident show "$INC" --json --now $((T0 + 2 * D)) | jq -r '.reports[2].deadline')"
expect_ok "incident final draft" ctl incident report "$INC" --type final
echo "$OUT" | grep -qF "## Type of threat or root cause" || fail "incident final lacks the root cause: $OUT"
pass "incident final draft asks for the root cause (Art. 14(4)(c))"

# --- closed: no more deadlines, no more changes --------------------------------------
run ctl incident list --overdue --now $((T0 + 40 * D))
expect_eq "day 40: both entries have overdue reports" 3 "$RC"
expect_ok "close the incident" ctl incident close "$INC" --note "host rebuilt" --now $((T0 + 40 * D))
echo "$ERR" | grep -q "closed without its early-warning (overdue)" || fail "close does not warn: $ERR"
pass "close names the reports never submitted"
expect_eq "a closed entry has nothing overdue" "0 closed" \
  "$(ctl incident show "$INC" --json --now $((T0 + 40 * D)) | jq -r '"\(.overdue) \(.state)"')"
expect_ok "closing the vulnerability" ctl incident close 1 --now $((T0 + 40 * D))
expect_ok "everything closed: nothing overdue" ctl incident list --overdue --now $((T0 + 400 * D))
expect_eq "closed entries are hidden by default" "" "$(ctl incident list --json | jq -r '.[].id')"
expect_eq "--all lists them" "1 2" "$(ctl incident list --all --json | jq -r '[.[].id] | join(" ")')"
expect_fail "a closed entry cannot be changed" 1 "incident 1 is closed" \
  ctl incident update 1 --severity low --now $((T0 + 41 * D))
expect_fail "a closed entry cannot be closed again" 1 "closed" ctl incident close 1 --now $((T0 + 41 * D))
expect_eq "history of the incident" "opened|updated: notification submitted 2027-02-02T10:00:00Z|closed: host rebuilt" \
  "$(ctl incident show "$INC" --json | jq -r '[.history[].event] | join("|")')"

# --- not reportable: kept, no deadlines -------------------------------------------------
expect_ok "a vulnerability not exploited" ctl incident open --kind vulnerability \
  --title "verbose error page" --severity low
expect_ok "no deadlines a year later" ctl incident list --overdue --now $((T0 + 365 * D))
expect_eq "its reports are not required" "not-required" \
  "$(ctl incident show 3 --json | jq -r '[.reports[].status] | unique | join(",")')"

# --- refusals: named, and nothing written -------------------------------------------------
before="$(sqlite3 "$P/registry.db" 'SELECT count(*) FROM incidents; SELECT count(*) FROM incident_events')"
expect_fail "--kind is required" 2 "kind" ctl incident open --title x --severity low
expect_fail "unknown severity" 1 "severity 'urgent'" ctl incident open --kind incident --title x --severity urgent
expect_fail "--exploited on an incident" 1 "exploited.*vulnerability" \
  ctl incident open --kind incident --title x --severity low --exploited
expect_fail "aware in the future" 1 "future" ctl incident open --kind incident --title x \
  --severity low --aware-at $((T0 + D))
expect_fail "fix before awareness" 1 "fix time" ctl incident update 3 --fixed-at $((T0 - D))
expect_fail "unknown report type" 1 "early-warning, notification" ctl incident update 3 --submitted memo
expect_fail "report without --type" 2 "type" ctl incident report 3
expect_fail "no such entry" 1 "no incident 42" ctl incident show 42
expect_fail "not an id" 1 "not an incident id" ctl incident show abc
expect_fail "a bad IOTCTL_NOW" 1 "IOTCTL_NOW" env IOTCTL_NOW=soon "$IOTCTL" --dir "$P" incident list
expect_fail "control characters in a title" 1 "control characters" \
  ctl incident open --kind incident --title "$(printf 'a\033[2Jb')" --severity low
expect_eq "refusals wrote nothing" "$before" \
  "$(sqlite3 "$P/registry.db" 'SELECT count(*) FROM incidents; SELECT count(*) FROM incident_events')"

finish

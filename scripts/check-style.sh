#!/usr/bin/env bash
# The product's C style rules that a compiler does not enforce, checked over
# the product sources (not tests/ nor bench/):
#   - no assignment inside an if, while or switch condition: a status is
#     assigned on its own line and tested after;
#   - one cleanup path per function, curl's style: a goto jumps to `out`,
#     no other label;
#   - none of sprintf, vsprintf, strcpy, strcat, atoi, atol, atoll, gets:
#     snprintf, a length-checked copy and strtol/strtoul instead;
#   - the files are as clang-format (.clang-format) writes them.
# Comments, string and character literals are skipped; a designated
# initializer inside a condition (a compound literal) is not an assignment.
#
#   scripts/check-style.sh              check the directories in SCOPE
#   scripts/check-style.sh DIR|FILE...  check these instead
#   scripts/check-style.sh --self-test  plant each kind of violation in a
#                                       temporary directory and expect the
#                                       check to fail on it
# Exit status: 0 clean, 1 violations (listed as file:line: rule), 2 usage.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

# Directories of product C code, relative to the source root.
SCOPE=(common core gateway ports tools firmware console)

# Paths (prefixes, relative to the source root) left out of the check: for
# third-party code only, which keeps its authors' style. None today.
EXCLUDE=()

# Directories never searched: build trees, ESP-IDF's downloaded components.
PRUNE=(build managed_components)

check_rules() {
  python3 - "$@" <<'PY'
import re, sys

ASSIGN = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="}
BANNED = {"sprintf", "vsprintf", "strcpy", "strcat", "atoi", "atol", "atoll", "gets"}
CONTROL = {"if", "while", "switch"}
PUNCT = sorted(["<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=",
                "&&", "||", "+=", "-=", "*=", "/=", "%=", "&=", "^=", "|=", "##"],
               key=len, reverse=True)
TOKEN = re.compile(r"[A-Za-z_]\w*|\.?\d[\w.]*|" + "|".join(re.escape(p) for p in PUNCT) + r"|\S")


def strip(text):
    """text with comments and literals blanked, newlines kept for line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokens(code):
    line = 1
    pos = 0
    for m in TOKEN.finditer(code):
        line += code.count("\n", pos, m.start())
        pos = m.start()
        yield m.group(), line


def check(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        toks = list(tokens(strip(f.read())))
    found = []
    for k, (tok, line) in enumerate(toks):
        prev = toks[k - 1][0] if k > 0 else ""
        if tok in BANNED and prev not in (".", "->") and k + 1 < len(toks) and toks[k + 1][0] == "(":
            found.append((line, f"{tok}() is banned (use snprintf, a bounded copy or strtol)"))
        if tok == "goto" and k + 1 < len(toks) and toks[k + 1][0] != "out":
            found.append((line, f"goto {toks[k + 1][0]}: the one cleanup label is 'out'"))
        if tok not in CONTROL or prev == "#" or k + 1 >= len(toks) or toks[k + 1][0] != "(":
            continue
        depth, braces = 0, 0
        for tok2, line2 in toks[k + 1:]:
            if tok2 == "(":
                depth += 1
            elif tok2 == ")":
                depth -= 1
                if depth == 0:
                    break
            elif tok2 == "{":
                braces += 1
            elif tok2 == "}":
                braces -= 1
            elif tok2 in ASSIGN and braces == 0:
                found.append((line2, f"assignment '{tok2}' inside a {tok} condition"))
                break
    return found


bad = 0
for path in sys.argv[1:]:
    for line, why in check(path):
        print(f"{path}:{line}: {why}")
        bad += 1
sys.exit(1 if bad else 0)
PY
}

# Lists the C files under the arguments, less PRUNE and EXCLUDE.
list_files() {
  local prune=() p f
  for p in "${PRUNE[@]}"; do
    prune+=(-name "$p" -prune -o)
  done
  find "$@" "${prune[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print | sort |
    while IFS= read -r f; do
      for p in "${EXCLUDE[@]+"${EXCLUDE[@]}"}"; do
        case "$f" in "$p"*) continue 2 ;; esac
      done
      printf '%s\n' "$f"
    done
}

run_check() {
  local files=() status=0
  mapfile -t files < <(list_files "$@")
  if [ "${#files[@]}" -eq 0 ]; then
    echo "check-style: no C files under $*" >&2
    return 2
  fi
  check_rules "${files[@]}" || status=1
  if ! clang-format --style=file:"$ROOT/.clang-format" --dry-run -Werror "${files[@]}"; then
    echo "check-style: not as clang-format writes it (run clang-format -i on the files above)" >&2
    status=1
  fi
  [ "$status" -eq 0 ] && echo "check-style: ${#files[@]} files clean"
  return "$status"
}

# Each planted file must fail the check on its own; the clean one must pass.
self_test() {
  local failed=0 name
  TMP_SELF="$(mktemp -d)"; local tmp="$TMP_SELF"
  trap 'rm -rf "$TMP_SELF"' EXIT
  mkdir "$tmp/clean" "$tmp/bad"
  cat >"$tmp/clean/ok.c" <<'EOF'
#include <stdio.h>

struct pair {
    int a, b;
};

/* if ((n = f()) != 0) and strcpy(a, b) in a comment are not code */
int ok(char *buf, size_t len, int n)
{
    int st = snprintf(buf, len, "if (x = 1) strcat(%d)", n);
    if (st == n || st <= 0 || st >= (int)len || st != 'x')
        goto out;
    while (n-- > 0)
        st += n;
    for (int i = 0; i < n; i++)
        st += i;
    if ((struct pair){.a = 1, .b = 2}.a == st)
        return 1;
out:
    return st;
}
EOF
  plant() { # plant NAME BODY-LINE
    printf 'int %s(char *d, const char *s, int n)\n{\n    %s\n    return n;\n}\n' \
      "$1" "$2" >"$tmp/bad/$1.c"
  }
  plant assign_if 'if ((n = s[0]) != 0)'$'\n''        n++;'
  plant assign_while 'while ((n -= 1) > 0)'$'\n''        d[n] = 0;'
  plant assign_switch 'switch (n = s[0]) {'$'\n''    default:'$'\n''        break;'$'\n''    }'
  plant assign_multiline 'if (n > 0 &&'$'\n''        (n = s[1]) != 0)'$'\n''        n++;'
  plant goto_fail 'if (n < 0)'$'\n''        goto fail;'$'\n''fail:'
  plant use_sprintf 'sprintf(d, "%d", n);'
  plant use_vsprintf 'vsprintf(d, s, 0);'
  plant use_strcpy 'strcpy(d, s);'
  plant use_strcat 'strcat(d, s);'
  plant use_atoi 'n = atoi(s);'
  plant use_atol 'n = (int)atol(s);'
  plant use_gets 'gets(d);'
  printf 'int misformatted(int n) { return n+1; }\n' >"$tmp/bad/misformatted.c"

  if ! run_check "$tmp/clean" >"$tmp/out" 2>&1; then
    echo "self-test: the clean file failed the check:" >&2
    cat "$tmp/out" >&2
    failed=1
  fi
  for f in "$tmp"/bad/*.c; do
    name="$(basename "$f" .c)"
    if run_check "$f" >"$tmp/out" 2>&1; then
      echo "self-test: the planted violation $name passed the check" >&2
      failed=1
    elif [ "$name" != misformatted ] && ! grep -q "^$f:[0-9]*: " "$tmp/out"; then
      echo "self-test: $name failed without naming the file and line:" >&2
      cat "$tmp/out" >&2
      failed=1
    fi
  done
  [ "$failed" -eq 0 ] && echo "check-style self-test: every planted violation was caught"
  return "$failed"
}

case "${1:-}" in
--self-test) self_test ;;
-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
-*)
  echo "usage: $0 [--self-test | DIR|FILE...]" >&2
  exit 2
  ;;
"") cd "$ROOT" && run_check "${SCOPE[@]}" ;;
*) run_check "$@" ;;
esac

# Sourced by scripts/test: the console's browser test drives Debian's chromium (through
# Playwright's executable_path; no browser download). On a fresh machine, install it when we
# are root and apt exists (CI reaches Debian's mirror); otherwise leave it: the test then
# fails naming what is missing, it never skips.
if [[ -z "${NIYANTRA_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the console's browser test" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 \
      || echo "scripts/test: could not install chromium; tests/integration/test_console.py will fail" >&2
  else
    echo "scripts/test: no chromium (apt-get install chromium); tests/integration/test_console.py will fail" >&2
  fi
fi

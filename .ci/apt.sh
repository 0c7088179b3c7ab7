# Sourced by the .ci/setup-*.sh scripts: install Debian packages only when some are missing.
#   apt_install_missing NAME PACKAGE...
# NAME prefixes the messages. Does nothing when every package is installed (so the
# setup scripts stay idempotent and need no root then); otherwise installs the
# missing ones without recommends, through sudo when not root.

apt_install_missing() {
  local name=$1
  shift
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "$name: $* already installed"
    return 0
  fi
  # through env, so the setting survives sudo's environment reset
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
  if [[ $(id -u) -ne 0 ]]; then
    apt=(sudo "${apt[@]}")
  fi
  echo "$name: installing ${missing[*]}"
  "${apt[@]}" update -q
  "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"
}

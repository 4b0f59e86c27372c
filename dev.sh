#!/usr/bin/env bash
# The project's entry point. On a fresh Debian machine:
#   ./dev.sh demo    simulated Palacios on localhost + playbooks/demo.yml (the main job)
#   ./dev.sh test    every test: unit, sanity, integration, molecule (what CI runs)
# Other commands: unit, sanity, integration, molecule, bench, setup.
# It installs what it needs: Debian packages (apt), a Python venv in .venv (pip).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
TMP=$ROOT/.tmp
VENV=$ROOT/.venv
SANITY_VENV=$ROOT/.venv-sanity
COLLECTIONS=$TMP/collections
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# Debian packages: python + venv for the controller, ssh and iproute2/util-linux for the
# multi-host fleet test (network + mount namespaces, real sshd), git for ansible-test.
DEB_PACKAGES="python3 python3-venv python3-dev gcc git openssh-server openssh-client iproute2 util-linux procps tar"
# chromium: the headless browser the status page tests open the page in (never downloaded by pip).
DEB_PACKAGES="$DEB_PACKAGES chromium"

log() { printf '\n== %s\n' "$*"; }

system_packages() {
  local missing=""
  for pkg in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    log "installing Debian packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
}

venv() {  # venv DIR REQUIREMENTS...
  local dir=$1; shift
  local stamp
  stamp=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "preparing $dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check $(printf -- '-r %s ' "$@")
    echo "$stamp" > "$dir/.stamp"
  fi
}

setup() {
  system_packages
  venv "$VENV" tests/requirements.txt
  export PATH="$VENV/bin:$PATH"
  # Ansible finds the collection as v3vee.palacios through this link (no copy to go stale).
  mkdir -p "$COLLECTIONS/ansible_collections/v3vee"
  ln -sfn "$ROOT" "$COLLECTIONS/ansible_collections/v3vee/palacios"
  export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
  export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
  export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_STDOUT_CALLBACK=default
}

unit() {
  log "unit tests"
  python -m pytest -q -p no:cacheprovider tests/unit
}

sanity() {
  log "ansible-test sanity (no ignore files)"
  echo "ansible-core==2.19.14" > "$TMP/sanity-requirements.txt"
  venv "$SANITY_VENV" "$TMP/sanity-requirements.txt"
  # ansible-test wants the collection at .../ansible_collections/v3vee/palacios as real files.
  local tree=$TMP/sanity/ansible_collections/v3vee/palacios
  rm -rf "$TMP/sanity" && mkdir -p "$tree"
  git ls-files -co --exclude-standard -z | tar --null -cf - -T - | tar -xf - -C "$tree"
  (cd "$tree" && git init -q . && git add -A)
  # ansible-test bootstraps pip in its venvs with a script from a host outside the package
  # registries; give it the offline stand-in (ensurepip + the package index).
  mkdir -p ~/.ansible/test/cache
  cp tools/get_pip_offline.py ~/.ansible/test/cache/get_pip_24_2.py
  (cd "$tree" && "$SANITY_VENV/bin/ansible-test" sanity --requirements --python 3.11 --color no)
}

integration() {
  log "integration tests (ansible-playbook against simulated hosts)"
  python -m pytest -q -p no:cacheprovider tests/integration
}

molecule_tests() {
  log "molecule scenarios"
  (cd "$ROOT" && molecule test --all)
}

demo() {
  log "building and installing the collection"
  mkdir -p "$TMP/dist"
  ansible-galaxy collection build --force --output-path "$TMP/dist" >/dev/null
  unset ANSIBLE_COLLECTIONS_PATH  # install into, and use, the user's collections, as a user would
  ansible-galaxy collection install --force -p "$HOME/.ansible/collections" \
    "$TMP/dist/v3vee-palacios-$(sed -n 's/^version: //p' galaxy.yml).tar.gz" >/dev/null
  log "simulated Palacios on localhost + the demo"
  # the simulated host lives in /opt, /etc/v3vee, /var/lib/v3vee and /srv: root's places
  local become=""
  [ "$(id -u)" = 0 ] || become="--become"
  ansible-playbook -i localhost, -c local $become playbooks/demo.yml "$@"
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; demo "$@" ;;
  unit) setup; unit ;;
  sanity) setup; sanity ;;
  integration) setup; integration ;;
  molecule) setup; molecule_tests ;;
  bench) setup; python benchmarks/run.py "$@" ;;
  test) setup; unit; sanity; integration; molecule_tests
        echo; echo "stages: 4 passed, 0 failed" ;;  # set -e: a failing stage never gets here
  *) sed -n '2,6p' "$0"; exit 2 ;;
esac

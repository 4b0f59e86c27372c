#!/usr/bin/env bash
# The project's entry point. On a fresh Debian machine:
#   ./dev.sh demo    simulated Palacios on localhost + playbooks/demo.yml (the main job)
#   ./dev.sh test    every test: unit, lint, sanity, integration, molecule (what CI runs)
# Other commands: unit, lint, sanity, integration, molecule, bench, setup,
#   changelog (CHANGELOG.rst from changelogs/fragments), clean (undo what demo and tests installed).
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
# multi-host fleet test (network + mount namespaces, real sshd), git for ansible-test,
# and the shellcheck program for ansible-test's shellcheck test (skipped without it).
DEB_PACKAGES="python3 python3-venv python3-dev gcc git openssh-server openssh-client iproute2 util-linux procps tar shellcheck"
# Debian packages this script installed (./dev.sh clean removes these and no others).
INSTALLED_PACKAGES=$ROOT/.dev-installed-packages
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
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # shellcheck disable=SC2086  # one line per package
    printf '%s\n' $missing >> "$INSTALLED_PACKAGES"
  fi
}

venv() {  # venv DIR REQUIREMENTS...
  local dir=$1; shift
  local stamp
  stamp=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "preparing $dir"
    python3 -m venv "$dir"
    # shellcheck disable=SC2046  # one -r option per requirements file
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

# pytest shows every test with its result, then every test that took 1 s or more with its
# duration; two workers (pytest-xdist) for the two cores: every test has its own temporary host.
PYTEST="python -m pytest -v -n 2 -p no:cacheprovider --durations=0 --durations-min=1"

unit() {
  log "unit tests"
  $PYTEST tests/unit
}

lint() {
  log "ansible-lint --profile production (.ansible-lint), antsibull-changelog lint"
  # ansible-lint installs the collection under ANSIBLE_HOME: keep that copy in .tmp, not ~/.ansible.
  ANSIBLE_HOME=$TMP/ansible-home ansible-lint --nocolor --profile production
  antsibull-changelog lint
}

sanity() {
  log "ansible-test sanity (no ignore files)"
  echo "ansible-core==2.19.14" > "$TMP/sanity-requirements.txt"
  venv "$SANITY_VENV" "$TMP/sanity-requirements.txt"
  # ansible-test wants the collection at .../ansible_collections/v3vee/palacios as real files.
  local tree=$TMP/sanity/ansible_collections/v3vee/palacios
  rm -rf "$TMP/sanity" && mkdir -p "$tree"
  # Only the project's files: never copies of the collection that tools leave in the tree
  # (.ansible/ of ansible-lint, .tmp/, virtualenvs, ansible-test's output), even unignored.
  git ls-files -co --exclude-standard -z \
    | grep -zv -E '(^|/)(\.ansible|\.tmp|\.venv[^/]*|ansible_collections|tests/output)/' \
    | tar --null -cf - -T - | tar -xf - -C "$tree"
  (cd "$tree" && git init -q . && git add -A)
  # ansible-test bootstraps pip in its venvs with a script from a host outside the package
  # registries; give it the offline stand-in (ensurepip + the package index).
  mkdir -p ~/.ansible/test/cache
  cp tools/get_pip_offline.py ~/.ansible/test/cache/get_pip_24_2.py
  (cd "$tree" && "$SANITY_VENV/bin/ansible-test" sanity --requirements --python 3.11 --color no)
}

integration() {
  log "integration tests (ansible-playbook against simulated hosts)"
  $PYTEST tests/integration
}

molecule_tests() {
  local scenario failed=0 start
  for scenario in extensions/molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$scenario")")
    log "molecule scenario $scenario"
    start=$SECONDS
    if molecule test -s "$scenario"; then
      echo "molecule scenario $scenario: passed in $((SECONDS - start)) s"
    else
      echo "molecule scenario $scenario: FAILED after $((SECONDS - start)) s"
      failed=1
    fi
  done
  return $failed
}

# Runs every stage even when one fails, then the closing line from what really ran.
all_tests() {
  local stage passed=0 failed=0 failures="" start total=$SECONDS
  for stage in unit lint sanity integration molecule; do
    start=$SECONDS
    # its own process: errexit holds inside the stage (it would not in an if-condition)
    if "$ROOT/dev.sh" "$stage"; then
      passed=$((passed + 1)); echo "stage $stage: passed in $((SECONDS - start)) s"
    else
      failed=$((failed + 1)); failures="$failures $stage"
      echo "stage $stage: FAILED after $((SECONDS - start)) s"
    fi
  done
  echo
  [ -z "$failures" ] || echo "failed stages:$failures"
  echo "total: $(((SECONDS - total) / 60)) min $(((SECONDS - total) % 60)) s"
  echo "stages: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

changelog() {
  log "CHANGELOG.rst and changelogs/changelog.yaml from changelogs/fragments (release $(galaxy_version))"
  antsibull-changelog lint
  # A release that exists already takes the new fragments; they are then removed.
  antsibull-changelog release --version "$(galaxy_version)"
}

galaxy_version() { sed -n 's/^version: //p' galaxy.yml; }

remove_dir() {  # a directory and its content; a mount point (a test fleet's host) stays, empty
  echo "removing $1"
  $SUDO find "$1" -mindepth 1 -delete
  $SUDO rmdir "$1" 2>/dev/null || mountpoint -q "$1"
}

# Removes what ./dev.sh demo and ./dev.sh test installed, and nothing a user had: a path is
# only removed when it is the simulated host's or the demo's (see README "What the demo leaves").
clean() {
  local conf=/etc/v3vee/host.conf profile=/etc/profile.d/v3vee.sh inventory="" pkgs="" path
  # A simulated host's settings, inventory and profile snippet; a real Palacios host's stay.
  if [ -f "$conf" ] && grep -qx 'V3VEE_BACKEND=simulator' "$conf"; then
    inventory=$(sed -n 's/^V3VEE_INVENTORY_PATH=//p' "$conf")
    if [ -f "$profile" ] && grep -q -e "$conf" -e v3vee-sim "$profile"; then
      echo "removing $profile"; $SUDO rm -f "$profile"
    fi
    for path in "$conf" /etc/v3vee/memory.conf ${inventory:+"$inventory" "$inventory.lock"}; do
      [ ! -e "$path" ] || { echo "removing $path"; $SUDO rm -f "$path"; }
    done
  fi
  for path in /etc/v3vee /var/lib/v3vee; do  # only when nothing else is left in them
    [ ! -d "$path" ] || [ -n "$(ls -A "$path")" ] || remove_dir "$path"
  done
  [ ! -f /opt/v3vee-sim/lib/v3sim.py ] || remove_dir /opt/v3vee-sim
  [ ! -d /srv/v3vee-demo ] || remove_dir /srv/v3vee-demo
  local home_collection=$HOME/.ansible/collections/ansible_collections/v3vee/palacios
  [ ! -d "$home_collection" ] || { echo "removing $home_collection"; rm -rf "$home_collection"; }
  local pip_stand_in=$HOME/.ansible/test/cache/get_pip_24_2.py
  if [ -f "$pip_stand_in" ] && cmp -s "$pip_stand_in" tools/get_pip_offline.py; then
    echo "removing $pip_stand_in"; rm -f "$pip_stand_in"
  fi
  for path in "$HOME"/.ansible/tmp/molecule.*.{default,fleet,palacios_module,palacios_memory}; do
    [ ! -d "$path" ] || { echo "removing $path"; rm -rf "$path"; }
  done
  [ ! -f "$INSTALLED_PACKAGES" ] || pkgs=$(sort -u "$INSTALLED_PACKAGES" | tr '\n' ' ')
  if [ -n "$pkgs" ]; then
    log "removing the Debian packages dev.sh installed: $pkgs"
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove -y -qq $pkgs >/dev/null
  fi
  echo "removing .venv .venv-sanity .tmp .ansible tests/output .dev-installed-packages"
  rm -rf .venv .venv-sanity .tmp .ansible tests/output "$INSTALLED_PACKAGES"
}

demo() {
  log "building and installing the collection"
  mkdir -p "$TMP/dist"
  ansible-galaxy collection build --force --output-path "$TMP/dist" >/dev/null
  unset ANSIBLE_COLLECTIONS_PATH  # install into, and use, the user's collections, as a user would
  ansible-galaxy collection install --force -p "$HOME/.ansible/collections" \
    "$TMP/dist/v3vee-palacios-$(galaxy_version).tar.gz" >/dev/null
  log "simulated Palacios on localhost + the demo"
  # the simulated host lives in /opt, /etc/v3vee, /var/lib/v3vee and /srv: root's places
  local become=""
  [ "$(id -u)" = 0 ] || become="--become"
  ansible-playbook -i localhost, -c local $become playbooks/demo.yml "$@"
  cat <<'EOF'

== what to try next (ansible lives in .venv: activate it first; README "After the demo")
  . .venv/bin/activate
  ansible-playbook -i playbooks/inventories/localhost.yml playbooks/site.yml playbooks/provision.yml
  ansible -i playbooks/inventories/localhost.yml palacios_hosts -m v3vee.palacios.v3vee_facts
  ansible-doc v3vee.palacios.v3vee_vm
EOF
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; demo "$@" ;;
  unit) setup; unit ;;
  lint) setup; lint ;;
  sanity) setup; sanity ;;
  integration) setup; integration ;;
  molecule) setup; molecule_tests ;;
  bench) setup; python benchmarks/run.py "$@" ;;
  test) setup; all_tests ;;
  changelog) setup; changelog ;;
  clean) clean ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac

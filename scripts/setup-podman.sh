#!/usr/bin/env bash
# Sets up Podman to serve the Docker Engine API for the container tests (test/containers/), from
# Debian packages, and builds the small test image locally (no registry is reachable here).
# Idempotent and quick when everything is already there. Needs root (apt-get, /etc, /run).
#
#   scripts/setup-podman.sh            installs what is missing, starts the service, builds the image
#   DBC_PODMAN_SOCKET=/path.sock ...   another socket (default /run/podman/podman.sock)
#
# Prints, last, two lines the tests read:  socket=unix:///run/podman/podman.sock
#                                           image=localhost/dbc-test-busybox:3 id=sha256:... digest=sha256:...
#
# Why the settings: with crun, containers fail on this kernel ("setrlimit RLIMIT_NOFILE: Operation
# not permitted", then "cgroups in hybrid mode not supported"); runc works, given default ulimits
# that do not exceed the service's own hard limits (Podman's default nofile of 1048576 does here).
set -euo pipefail

SOCKET_PATH=${DBC_PODMAN_SOCKET:-/run/podman/podman.sock}
# the tag changes with the entry script below, so an older image is never mistaken for it
IMAGE=${DBC_TEST_IMAGE:-localhost/dbc-test-busybox:3}
CONF=/etc/containers/containers.conf
MARK='# written by dbc-overlay scripts/setup-podman.sh'
LOG=/var/log/dbc-podman-service.log

say () { echo "setup-podman: $*" >&2; }
die () { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get, $CONF, $SOCKET_PATH); run it as root or with sudo"

# one run at a time (test files run in parallel and each calls this)
exec 9>/run/dbc-setup-podman.lock
flock -w 600 9 || die "another scripts/setup-podman.sh held /run/dbc-setup-podman.lock for 10 minutes; see who with: fuser -v /run/dbc-setup-podman.lock"

# 1. Packages: podman, runc (not crun, see above) and a static busybox for the test image.
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || missing+=(busybox-static)
command -v iptables >/dev/null || missing+=(iptables)  # the bridge network of tasks that may use one
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt_install () { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"; }
  apt_install "${missing[@]}" >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && apt_install "${missing[@]}" >/dev/null; } \
    || die "apt-get could not install ${missing[*]}"
fi

# 2. Runtime and default ulimits. The nofile default is the service's own hard limit (at most 65536).
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] && hard_nofile=65536
[ "$hard_nofile" -gt 65536 ] && hard_nofile=65536
want="$MARK
[containers]
default_ulimits = [\"nofile=${hard_nofile}:${hard_nofile}\", \"nproc=4096:4096\"]

[engine]
runtime = \"runc\"
"
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  # an operator's own file stays; ours goes into the drop-in directory, read after it
  mkdir -p /etc/containers/containers.conf.d
  CONF=/etc/containers/containers.conf.d/50-dbc-overlay.conf
fi
conf_changed=0
if [ "$(cat "$CONF" 2>/dev/null)" != "$(printf '%s' "$want")" ]; then
  mkdir -p "$(dirname "$CONF")"
  printf '%s' "$want" > "$CONF"
  conf_changed=1
  say "wrote $CONF (runtime runc, nofile=${hard_nofile}, nproc=4096)"
fi

# 3. The Docker Engine API on a unix socket (podman system service), backgrounded.
ping () { curl -s --max-time 3 --unix-socket "$SOCKET_PATH" http://d/_ping 2>/dev/null | grep -q OK; }
PIDFILE=/run/dbc-podman-service.pid
if [ "$conf_changed" = 1 ] && ping; then
  # a service this script started before the config changed keeps the old runtime: restart it
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if [ -n "$pid" ] && grep -q "system.service" "/proc/$pid/cmdline" 2>/dev/null; then
    say "restarting the service (pid $pid) for the new config"; kill "$pid"; sleep 1
  else
    say "a service not started by this script answers on $SOCKET_PATH; restart it yourself to apply $CONF"
  fi
fi
if ! ping; then
  mkdir -p "$(dirname "$SOCKET_PATH")"
  rm -f "$SOCKET_PATH"
  # 9>&-: the service must not inherit the lock, or every later run of this script waits on it forever
  # from /: conmon writes files such as "oom" into the service's working directory
  (cd / && exec setsid nohup podman system service --time=0 "unix://$SOCKET_PATH" >>"$LOG" 2>&1 < /dev/null 9>&-) &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do ping && break; sleep 0.2; done
  ping || die "podman system service did not answer on $SOCKET_PATH within 20 s; see $LOG"
  say "podman system service answers on unix://$SOCKET_PATH (log: $LOG)"
fi
# run through sudo (CI): the invoking user may use the socket (the tests and daemons run as that user)
if [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ]; then
  chown "$SUDO_UID" "$SOCKET_PATH"
fi

# 4. The test image: a root file system of Debian's static busybox and one entry script, imported
# with `podman import` (no registry). The script does one of a fixed set of things, chosen by the
# task's entry (DBC_ENTRY): the operator's image names the program; the task sends only data.
if ! podman image exists "$IMAGE"; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  root=$work/rootfs
  # no /task in the image: the executor mounts a tmpfs there, and Podman keeps an existing
  # directory's owner and mode under a tmpfs (root 0755: the task user could not write)
  mkdir -p "$root"/{bin,dbc,tmp,proc,sys,dev,etc}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/task:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  cat > "$root/dbc/run" <<'EOF'
#!/bin/sh
# dbc test image: the task's entry ($DBC_ENTRY) picks one fixed behaviour; its input is /task/input.
case "$DBC_ENTRY" in
  square) awk '{ printf "%d\n", $1 * $1 }' /task/input ;;
  echo) cat /task/input ;;
  loop) while :; do :; done ;;
  flood) dd if=/dev/zero bs=1048576 count=1024 2>/dev/null ;;
  membomb) x=a; while :; do x="$x$x"; done ;;
  forkbomb) i=0; while [ $i -lt 500 ]; do sleep 30 2>/dev/null & i=$((i+1)); done; echo "processes: $(ls -d /proc/[0-9]* | wc -l)" ;;
  net)
    # input "HOST:PORT": tries one TCP connection (busybox nc; its wget crashes when static)
    echo "interfaces: $(ls /sys/class/net | tr '\n' ' ')"
    to=$(cat /task/input)
    got=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "${to%:*}" "${to##*:}" 2>/tmp/err | head -c 12)
    if [ -n "$got" ]; then echo "reached $to: $got"; else echo "unreachable: $(cat /tmp/err)"; fi ;;
  whoami)
    echo "uid=$(id -u) gid=$(id -g)"
    if touch /root-write-test 2>/dev/null; then echo "root: writable"; else echo "root: read-only"; fi
    if echo x > /task/out 2>/dev/null; then echo "task: writable"; else echo "task: read-only"; fi
    echo "memory.limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max 2>/dev/null)"
    echo "pids.max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null)"
    echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max 2>/dev/null)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null)" ;;
  fail) echo "failing on purpose" >&2; exit 3 ;;
  *) echo "unknown entry: $DBC_ENTRY" >&2; exit 2 ;;
esac
EOF
  chmod 0755 "$root/dbc/run"
  tar -C "$root" --owner=0 --group=0 -c . | podman import --quiet \
    --change 'ENTRYPOINT ["/dbc/run"]' --change 'ENV PATH=/bin' --change 'USER 65534:65534' --change 'WORKDIR /task' \
    - "$IMAGE" >/dev/null || die "podman import of the test image failed"
  say "built $IMAGE"
fi

id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
digest=$(podman image inspect --format '{{.Digest}}' "$IMAGE")
echo "socket=unix://$SOCKET_PATH"
echo "image=$IMAGE id=sha256:${id#sha256:} digest=$digest"

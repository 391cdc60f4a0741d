// The command line that starts an isolated process, built without side effects.
//
//   setpriv --pdeathsig KILL            dies with the daemon
//   unshare [--user --map-root-user] --pid --fork --kill-child --mount --propagation private --mount-proc
//   sh -c LAUNCHER                      PID 1 of the new namespace: hides paths, binds the cwd back, then runs
//   env -C CWD prlimit ... setpriv ...  the command in CWD, with limits, as an unprivileged user, no capabilities
//
// PID 1 stays a shell that waits for the command (it does not exec it): setpriv changes the uid, which clears
// the parent-death signal, so the init that must die with `unshare` is the shell, and when it dies the kernel
// kills every process left in the namespace (a `setsid` escape included).

/** The uid/gid tasks run as when the daemon is root (nobody/nogroup on Debian-like systems). */
export const TASK_UID = 65534

export type IsolationMode = 'root' | 'userns'

export interface LaunchLimits { addressSpaceBytes?: number, cpuSeconds?: number, processes?: number, openFiles?: number }

export interface LaunchSpec {
  command: string
  args: string[]
  cwd: string
  env: Record<string, string>
  hidePaths: string[]
  limits: LaunchLimits
  /** An empty network namespace (no interface but a down loopback). */
  noNetwork?: boolean
}

// $1 cwd, $2 mode (drop: chown the cwd to the task user), $3/$4 whether PWD was passed and its value, then the
// paths to hide up to "--", then the command. `mount --no-canonicalize --bind . CWD` binds the directory the
// shell is in (resolved by the kernel, so the real one even when a hidden path now covers it) back at its path;
// that bind carries no submounts, so the paths inside the cwd are hidden a second time. When running as root,
// a directory above the cwd that the task user cannot search is covered too (see the comment inside).
export const LAUNCHER = `
cwd=$1 mode=$2 pwdset=$3 pwdval=$4; shift 4
pathset=\${PATH+1} taskpath=$PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin
fail () { echo "dbc-isolation: $*" >&2; exit 125; }
cd "$cwd" || fail "cannot enter $cwd"
hide () {
  inside=$1; shift
  while [ "$1" != "--" ]; do
    case "$1" in "$inside"*) ;; *) shift; continue ;; esac
    if [ -d "$1" ]; then mount -t tmpfs -o size=16k,mode=0755,nosuid,nodev,noexec dbc-hidden "$1" || fail "cannot hide $1"
    elif [ -e "$1" ]; then mount --bind /dev/null "$1" || fail "cannot hide $1"; fi
    shift
  done
}
hide "" "$@"
if [ "$mode" = drop ] && ! setpriv --reuid=${TASK_UID} --regid=${TASK_UID} --clear-groups -- test -x "\${cwd%/*}/" 2>/dev/null; then
  # a directory above the cwd is closed to the task user (say /root): cover the first such one with an empty
  # tmpfs (hiding it too), so the cwd, bound back below, can be reached by its path
  set -f; ifs=$IFS; IFS=/; d=
  for part in \${cwd%/*}; do
    [ -n "$part" ] || continue
    d="$d/$part"
    [ -d "$d" ] || break
    if ! setpriv --reuid=${TASK_UID} --regid=${TASK_UID} --clear-groups -- test -x "$d"; then
      mount -t tmpfs -o size=16k,mode=0755,nosuid,nodev,noexec dbc-hidden "$d" || fail "cannot cover $d"
      break
    fi
  done
  IFS=$ifs; set +f
fi
mkdir -p "$cwd" && mount --no-canonicalize --bind . "$cwd" || fail "cannot mount the working directory $cwd"
hide "\${cwd%/}/" "$@"
while [ "$1" != "--" ]; do shift; done
shift
if [ "$mode" = keep ]; then
  # in a user namespace the task keeps the daemon's uid: every mount but its own directory becomes read-only
  while read -r _ mp _; do
    if [ "$mp" != "$cwd" ]; then mount -o remount,bind,ro "$mp" 2>/dev/null; fi
  done < /proc/self/mounts
  mount -o remount,bind,ro / || fail "cannot make / read-only"
fi
if [ "$mode" = drop ]; then
  chown ${TASK_UID}:${TASK_UID} "$cwd" || fail "cannot hand $cwd to the task user"
  setpriv --reuid=${TASK_UID} --regid=${TASK_UID} --clear-groups -- test -x "$cwd" || fail "uid ${TASK_UID} cannot reach $cwd: a directory above it is not searchable (put it under a world-searchable directory, or under a hidden path)"
fi
unset OLDPWD
if [ "$pathset" = 1 ]; then PATH=$taskpath; else unset PATH; fi
if [ "$pwdset" = 1 ]; then export PWD="$pwdval"; else unset PWD; fi
"$@"
code=$?
exit $code
`

function positiveInt (name: string, v: number | undefined): string | undefined {
  if (v === undefined) return undefined
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`isolation limit ${name} must be a positive integer, not ${String(v)}`)
  return `${v}:${v}`
}

/** prlimit options for the limits that are set (soft = hard, so the task cannot raise them). */
export function prlimitArgs (l: LaunchLimits): string[] {
  const out: string[] = []
  const pairs: Array<[string, number | undefined]> = [['--as', l.addressSpaceBytes], ['--cpu', l.cpuSeconds], ['--nproc', l.processes], ['--nofile', l.openFiles]]
  for (const [flag, v] of pairs) {
    const s = positiveInt(flag.slice(2), v)
    if (s !== undefined) out.push(`${flag}=${s}`)
  }
  return out
}

/** unshare's flags for a mode: as root a plain PID + mount namespace; otherwise inside a user namespace. */
export function unshareArgs (mode: IsolationMode, noNetwork = false): string[] {
  return [...(mode === 'userns' ? ['--user', '--map-root-user'] : []), ...(noNetwork ? ['--net'] : []), '--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc']
}

/**
 * setpriv's flags for the task. As root: uid/gid nobody, no groups. In a user namespace only our own uid is
 * mapped, so the task stays uid 0 there but with an empty capability bounding set, so it cannot undo the mounts.
 */
export function dropArgs (mode: IsolationMode): string[] {
  const ids = mode === 'root' ? [`--reuid=${TASK_UID}`, `--regid=${TASK_UID}`, '--clear-groups'] : []
  return [...ids, '--no-new-privs', '--bounding-set=-all', '--inh-caps=-all']
}

export interface Tools { env: string, prlimit: string, setpriv: string, unshare: string, sh: string }

/** The program and arguments to spawn (the environment goes through spawn's env, never the command line). */
export function launchCommand (spec: LaunchSpec, mode: IsolationMode, tools: Tools): { file: string, args: string[] } {
  if (spec.hidePaths.includes('--')) throw new RangeError('"--" is not a path to hide')
  const pwdSet = Object.prototype.hasOwnProperty.call(spec.env, 'PWD')
  const limits = prlimitArgs(spec.limits)
  const inner = [
    tools.env, '-C', spec.cwd, '--',
    ...(limits.length > 0 ? [tools.prlimit, ...limits, '--'] : []),
    tools.setpriv, ...dropArgs(mode), '--',
    spec.command, ...spec.args
  ]
  return {
    file: tools.setpriv,
    args: ['--pdeathsig', 'KILL', '--', tools.unshare, ...unshareArgs(mode, spec.noNetwork), '--', tools.sh, '-c', LAUNCHER, 'dbc-isolation',
      spec.cwd, mode === 'root' ? 'drop' : 'keep', pwdSet ? '1' : '0', spec.env.PWD ?? '', ...spec.hidePaths, '--', ...inner]
  }
}

# dcportal-ocf.sh - code shared by the dcportal OCF resource agents (sourced, bash).
#
# Each agent wraps exactly one long-running process of the project and defines:
#   DCP_AGENT, DCP_SHORTDESC, DCP_LONGDESC   names and descriptions
#   dcp_agent_parameters     prints its own <parameter> elements
#   dcp_agent_validate       checks its own parameters (returns an OCF code)
#   dcp_command              fills DCP_ARGV with the process's argv
#   dcp_ready                0 when a just-started process is fully up
#   dcp_check                depth-0 health of a running process (pid already verified)
#   dcp_check_deep           depth-10 health: database and channel layer / broker round trips;
#                            a dependency every process shares that is down from the agent too
#                            is no fault of the process: it passes with a warning (dcp_deep_verdict)
# and then calls dcp_main "$@".
#
# Rules kept here once for all agents:
#   - a pid counts only if /proc/<pid>/cmdline is exactly our argv and the process
#     is not a zombie; nothing is ever looked up or killed by name pattern;
#   - the process runs in its own session (setsid), so its pid is its process
#     group and stop can SIGKILL the whole group, children included;
#   - its output goes to a log file; start fails as soon as the process dies and
#     otherwise waits for real health until the operation deadline;
#   - stop never needs a valid configuration: SIGTERM (+SIGCONT), grace, SIGKILL
#     of the group, and success only once nothing of the group is left.
#
# License: Apache-2.0 (part of dcportal).

# ---- parameters common to every agent ----------------------------------------
dcp_init() {
	OCF_RESKEY_app_dir_default="/opt/dcportal"
	OCF_RESKEY_venv_default="/opt/dcportal/.venv"
	OCF_RESKEY_settings_default="dcportal.settings"
	OCF_RESKEY_user_default="root"
	OCF_RESKEY_env_file_default="/etc/dcportal/dcportal.env"
	OCF_RESKEY_database_url_default=""
	OCF_RESKEY_redis_url_default=""
	OCF_RESKEY_database_name_default=""
	OCF_RESKEY_pidfile_default="${HA_RSCTMP}/${DCP_AGENT}-${OCF_RESOURCE_INSTANCE}.pid"
	OCF_RESKEY_logfile_default="/var/log/dcportal/${DCP_AGENT}-${OCF_RESOURCE_INSTANCE}.log"
	OCF_RESKEY_extra_args_default=""
	OCF_RESKEY_stop_grace_default="30"
	OCF_RESKEY_check_timeout_default="10"

	: "${OCF_RESKEY_app_dir=${OCF_RESKEY_app_dir_default}}"
	: "${OCF_RESKEY_venv=${OCF_RESKEY_venv_default}}"
	: "${OCF_RESKEY_settings=${OCF_RESKEY_settings_default}}"
	: "${OCF_RESKEY_user=${OCF_RESKEY_user_default}}"
	: "${OCF_RESKEY_env_file=${OCF_RESKEY_env_file_default}}"
	: "${OCF_RESKEY_database_url=${OCF_RESKEY_database_url_default}}"
	: "${OCF_RESKEY_redis_url=${OCF_RESKEY_redis_url_default}}"
	: "${OCF_RESKEY_database_name=${OCF_RESKEY_database_name_default}}"
	: "${OCF_RESKEY_pidfile=${OCF_RESKEY_pidfile_default}}"
	: "${OCF_RESKEY_logfile=${OCF_RESKEY_logfile_default}}"
	: "${OCF_RESKEY_extra_args=${OCF_RESKEY_extra_args_default}}"
	: "${OCF_RESKEY_stop_grace=${OCF_RESKEY_stop_grace_default}}"
	: "${OCF_RESKEY_check_timeout=${OCF_RESKEY_check_timeout_default}}"

	DCP_PYTHON="${OCF_RESKEY_venv%/}/bin/python"
	DCP_MANAGE="${OCF_RESKEY_app_dir%/}/manage.py"
}

# dcp_param NAME TYPE UNIQUE SHORTDESC LONGDESC: one <parameter>, its default from OCF_RESKEY_<NAME>_default.
dcp_param() {
	local name=$1 type=$2 unique=$3 short=$4 long=$5 default_var="OCF_RESKEY_${1}_default"
	cat <<END
<parameter name="${name}" unique="${unique}" required="0">
<longdesc lang="en">${long}</longdesc>
<shortdesc lang="en">${short}</shortdesc>
<content type="${type}" default="${!default_var}"/>
</parameter>
END
}

dcp_meta_data() {
	cat <<END
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="${DCP_AGENT}" version="1.0">
<version>1.0</version>
<longdesc lang="en">${DCP_LONGDESC}

The process runs in its own session with its output appended to logfile. Its
environment is only: PATH, HOME, LANG, the KEY=VALUE lines of env_file, then
DJANGO_SETTINGS_MODULE and the database_url / redis_url / database_name
parameters when set.
</longdesc>
<shortdesc lang="en">${DCP_SHORTDESC}</shortdesc>
<parameters>
END
	dcp_agent_parameters
	dcp_param app_dir string 0 "application directory" "Directory holding manage.py (the process's working directory)."
	dcp_param venv string 0 "virtualenv" "Python virtualenv with the project installed; its bin/python runs the process."
	dcp_param settings string 0 "Django settings" "DJANGO_SETTINGS_MODULE of the process."
	dcp_param user string 0 "user" "User the process runs as (setpriv; root runs it unchanged)."
	dcp_param env_file string 0 "environment file" "File of KEY=VALUE lines (DATABASE_URL, REDIS_URL, DCPORTAL_*) given to the process; empty for none. Keep secrets here rather than in the CIB."
	dcp_param database_url string 0 "DATABASE_URL" "Overrides DATABASE_URL from env_file when not empty."
	dcp_param redis_url string 0 "REDIS_URL" "Overrides REDIS_URL from env_file when not empty."
	dcp_param database_name string 0 "database name" "Overrides the database name of DATABASE_URL (DCPORTAL_DATABASE_NAME) when not empty."
	dcp_param pidfile string 1 "pid file" "Where the agent records the process id (on tmpfs, cleared at boot)."
	dcp_param logfile string 0 "log file" "File receiving the process's stdout and stderr (appended)."
	dcp_param extra_args string 0 "extra arguments" "Appended to the command line (split on blanks)."
	dcp_param stop_grace integer 0 "stop grace (s)" "Seconds between SIGTERM and SIGKILL of the process group; capped by the stop timeout minus 8 s."
	dcp_param check_timeout integer 0 "check timeout (s)" "Seconds allowed for one health check (HTTP request or level-10 check)."
	cat <<END
</parameters>
<actions>
<action name="start" timeout="60s" />
<action name="stop" timeout="60s" />
<action name="monitor" timeout="20s" interval="10s" depth="0" />
<action name="monitor" timeout="40s" interval="60s" depth="10" />
<action name="validate-all" timeout="10s" />
<action name="meta-data" timeout="5s" />
</actions>
</resource-agent>
END
}

dcp_usage() {
	echo "usage: $0 {start|stop|monitor|validate-all|meta-data|usage}"
}

# ---- processes ------------------------------------------------------------------
# dcp_proc_field PID: prints "state ppid pgrp" from /proc/PID/stat (the comm may hold blanks and parens).
dcp_proc_field() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	set -- $stat
	echo "$1 $2 $3"
}

# True while PID is a live process; a zombie is dead (kill -0 would say alive).
dcp_alive() {
	local fields
	fields=$(dcp_proc_field "$1") || return 1
	case ${fields%% *} in Z|X|x) return 1;; esac
	return 0
}

# True while process group PGID (= the pid of the process, its leader) has a non-zombie member.
dcp_group_alive() {
	local f stat
	dcp_alive "$1" && return 0
	for f in /proc/[0-9]*/stat; do
		read -r stat 2>/dev/null <"$f" || continue
		stat=${stat##*) }
		set -- "$1" $stat
		if [ "$4" = "$1" ]; then
			case $2 in Z|X|x) ;; *) return 0;; esac
		fi
	done
	return 1
}

# The command line the process must have, NUL-separated args joined by single blanks.
dcp_expected_cmdline() {
	dcp_command || return 1
	local IFS=' '
	echo "${DCP_ARGV[*]}"
}

# Prints the pid from the pid file if it is really our process (argv matches, not a zombie).
dcp_pid() {
	local pid cmdline expected
	[ -r "$OCF_RESKEY_pidfile" ] || return 1
	read -r pid <"$OCF_RESKEY_pidfile" 2>/dev/null
	ocf_is_decimal "$pid" || return 1
	dcp_alive "$pid" || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	expected=$(dcp_expected_cmdline) || return 1
	[ "${cmdline% }" = "$expected" ] || return 1
	echo "$pid"
}

# True if PID is stopped (SIGSTOP) or traced: it serves nothing however long we wait.
dcp_is_stopped() {
	local fields
	fields=$(dcp_proc_field "$1") || return 1
	case ${fields%% *} in T|t) return 0;; esac
	return 1
}

dcp_now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

dcp_deadline() {
	# $1: seconds kept back from the operation timeout (Pacemaker passes it in ms).
	local timeout_ms=${OCF_RESKEY_CRM_meta_timeout:-60000}
	ocf_is_decimal "$timeout_ms" || timeout_ms=60000
	echo $(( $(date +%s) + timeout_ms / 1000 - $1 ))
}

# ---- environment -----------------------------------------------------------------
# Fills DCP_ENV with the process environment (see meta-data). Returns an OCF code.
dcp_build_env() {
	local line key val home
	home=$(getent passwd "$OCF_RESKEY_user" | cut -d: -f6)
	DCP_ENV=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "LANG=C.UTF-8" "HOME=${home:-/}"
		"PYTHONUNBUFFERED=1")
	if [ -n "$OCF_RESKEY_env_file" ]; then
		if [ ! -r "$OCF_RESKEY_env_file" ]; then
			ocf_exit_reason "env_file $OCF_RESKEY_env_file is not readable"
			return $OCF_ERR_INSTALLED
		fi
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line#"${line%%[![:space:]]*}"}
			case $line in ''|'#'*) continue;; esac
			line=${line#export }
			key=${line%%=*}
			val=${line#*=}
			if [[ ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ "$key" = "$line" ]; then
				ocf_exit_reason "env_file $OCF_RESKEY_env_file: not a KEY=VALUE line: $key"
				return $OCF_ERR_CONFIGURED
			fi
			case $val in \"*\"|\'*\') val=${val:1:${#val}-2};; esac
			DCP_ENV+=("$key=$val")
		done <"$OCF_RESKEY_env_file"
	fi
	DCP_ENV+=("DJANGO_SETTINGS_MODULE=$OCF_RESKEY_settings")
	[ -n "$OCF_RESKEY_database_url" ] && DCP_ENV+=("DATABASE_URL=$OCF_RESKEY_database_url")
	[ -n "$OCF_RESKEY_redis_url" ] && DCP_ENV+=("REDIS_URL=$OCF_RESKEY_redis_url")
	[ -n "$OCF_RESKEY_database_name" ] && DCP_ENV+=("DCPORTAL_DATABASE_NAME=$OCF_RESKEY_database_name")
	return $OCF_SUCCESS
}

# The value VAR gets in the process environment (last assignment wins, as with env).
dcp_env_value() {
	local kv value=""
	for kv in "${DCP_ENV[@]}"; do
		[ "${kv%%=*}" = "$1" ] && value=${kv#*=}
	done
	echo "$value"
}

# Prefix that runs a command as the configured user (nothing for root).
dcp_runas() {
	DCP_RUNAS=()
	if [ "$(id -u "$OCF_RESKEY_user")" != 0 ]; then
		DCP_RUNAS=(setpriv "--reuid=$OCF_RESKEY_user" "--regid=$(id -g "$OCF_RESKEY_user")" --init-groups)
	fi
}

# Exit status of `manage.py healthcheck` when all that is down is a dependency every process shares
# (database, channel layer, Celery broker) and it is down from the agent too: no restart can fix that.
DCP_SHARED_OUTAGE=3

# dcp_run_check TIMEOUT ARGS...: runs a project command as the process would (user, env from
# env_file as it is now, working directory), bounded by TIMEOUT; stdin is passed on. Its output
# is in DCP_CHECK_OUT, and logged on failure (a shared outage is left to dcp_deep_verdict).
dcp_run_check() {
	local limit=$1 rc
	shift
	dcp_build_env || return $OCF_ERR_GENERIC
	dcp_runas
	DCP_CHECK_OUT=$(cd "$OCF_RESKEY_app_dir" && timeout -k 2 "$limit" "${DCP_RUNAS[@]}" env -i "${DCP_ENV[@]}" "$@" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && [ $rc -ne $DCP_SHARED_OUTAGE ] &&
		ocf_log warn "$DCP_AGENT check failed (rc $rc): $(echo "$DCP_CHECK_OUT" | tail -n 3)"
	return $rc
}

# dcp_deep_verdict RC PID REASON: the level-10 result of a healthcheck that exited RC. A shared
# outage passes with a warning (the process is as healthy as a restart could make it; the pid,
# SIGSTOP and heartbeat checks still ran before); anything else fails with REASON.
dcp_deep_verdict() {
	case $1 in
		0) return 0;;
		"$DCP_SHARED_OUTAGE") dcp_warn_shared_outage "$2" "not a fault of this process, so no restart"; return 0;;
	esac
	ocf_exit_reason "$3"
	return 1
}

# dcp_warn_shared_outage PID WHY: logs which shared dependency the last check found down for everyone.
dcp_warn_shared_outage() {
	ocf_log warn "$DCP_AGENT (pid $1): $(echo "$DCP_CHECK_OUT" | grep -o 'shared dependency down.*' | tail -n 1); $2"
}

# dcp_seconds_left DEADLINE: whole seconds until DEADLINE (epoch seconds), at most check_timeout.
dcp_seconds_left() {
	local left=$(( $1 - $(date +%s) ))
	[ "$left" -gt "$OCF_RESKEY_check_timeout" ] && left=$OCF_RESKEY_check_timeout
	echo "$left"
}

# A file the process touches from its main loop: created old and owned by the user, so
# a fresh mtime proves the new process got through its loop.
dcp_heartbeat_reset() {
	local file=$1
	mkdir -p "$(dirname "$file")" || return 1
	rm -f "$file"
	touch -d @1 "$file" && chown "$OCF_RESKEY_user" "$file"
}

# Seconds since FILE was last touched (a large number when missing).
dcp_heartbeat_age() {
	local mtime
	mtime=$(stat -c %Y "$1" 2>/dev/null) || { echo 999999; return; }
	echo $(( $(date +%s) - mtime ))
}

# For the agents with heartbeat_file / heartbeat_max_age parameters.
dcp_heartbeat_validate() {
	if ! ocf_is_decimal "$OCF_RESKEY_heartbeat_max_age" || [ "$OCF_RESKEY_heartbeat_max_age" -lt 2 ]; then
		ocf_exit_reason "heartbeat_max_age must be an integer >= 2, got '$OCF_RESKEY_heartbeat_max_age'"
		return $OCF_ERR_CONFIGURED
	fi
	case $OCF_RESKEY_heartbeat_file in
		/*) return $OCF_SUCCESS;;
	esac
	ocf_exit_reason "heartbeat_file must be an absolute path"
	return $OCF_ERR_CONFIGURED
}

dcp_heartbeat_fresh() {
	[ "$(dcp_heartbeat_age "$OCF_RESKEY_heartbeat_file")" -le "$OCF_RESKEY_heartbeat_max_age" ]
}

# ---- actions ------------------------------------------------------------------------
dcp_monitor() {
	local pid
	if ! pid=$(dcp_pid); then
		if [ -e "$OCF_RESKEY_pidfile" ] && ! ocf_is_probe; then
			ocf_log info "$DCP_AGENT: pid file $OCF_RESKEY_pidfile names no live process of ours"
		fi
		return $OCF_NOT_RUNNING
	fi
	if dcp_is_stopped "$pid"; then
		ocf_exit_reason "pid $pid is stopped (SIGSTOP or traced) and serves nothing"
		return $OCF_ERR_GENERIC
	fi
	ocf_is_probe && return $OCF_SUCCESS
	dcp_check "$pid" || return $OCF_ERR_GENERIC
	if [ "$(ocf_check_level 0 10)" -ge 10 ]; then
		dcp_check_deep "$pid" || return $OCF_ERR_GENERIC
	fi
	return $OCF_SUCCESS
}

dcp_start() {
	local rc pid deadline
	dcp_monitor
	rc=$?
	case $rc in
		"$OCF_SUCCESS") ocf_log info "$DCP_AGENT already running"; return $OCF_SUCCESS;;
		"$OCF_NOT_RUNNING") dcp_stop || return $OCF_ERR_GENERIC;;  # leftovers of a crashed one
		*) ocf_log warn "$DCP_AGENT found failed (rc $rc); stopping it before the start"
		   dcp_stop || return $OCF_ERR_GENERIC;;
	esac
	dcp_build_env || return $?
	dcp_runas
	dcp_command || return $OCF_ERR_CONFIGURED
	mkdir -p "$(dirname "$OCF_RESKEY_pidfile")" "$(dirname "$OCF_RESKEY_logfile")" || return $OCF_ERR_PERM
	touch "$OCF_RESKEY_logfile" && chown "$OCF_RESKEY_user" "$OCF_RESKEY_logfile" || return $OCF_ERR_PERM
	dcp_prepare_start || return $OCF_ERR_GENERIC
	echo "$(date '+%F %T') ${DCP_AGENT}[${OCF_RESOURCE_INSTANCE}]: starting: ${DCP_ARGV[*]}" >>"$OCF_RESKEY_logfile"
	# setsid and setpriv exec in place (the subshell is no group leader), so $! is the
	# process itself, and setsid makes it the leader of its own session and group.
	( cd "$OCF_RESKEY_app_dir" && exec setsid "${DCP_RUNAS[@]}" env -i "${DCP_ENV[@]}" "${DCP_ARGV[@]}" \
		>>"$OCF_RESKEY_logfile" 2>&1 </dev/null ) &
	pid=$!
	echo "$pid" >"$OCF_RESKEY_pidfile"
	deadline=$(dcp_deadline 5)
	while :; do
		if ! dcp_alive "$pid"; then
			ocf_exit_reason "$DCP_AGENT exited during start; see $OCF_RESKEY_logfile: $(tail -n 2 "$OCF_RESKEY_logfile" | tr '\n' ' ' | cut -c1-200)"
			rm -f "$OCF_RESKEY_pidfile"
			return $OCF_ERR_GENERIC
		fi
		if dcp_pid >/dev/null && dcp_ready "$pid"; then
			break
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			ocf_exit_reason "$DCP_AGENT (pid $pid) not healthy before the start timeout; see $OCF_RESKEY_logfile"
			dcp_stop_pid "$pid" 1
			return $OCF_ERR_GENERIC
		fi
		sleep 0.1
	done
	echo "$(date '+%F %T') ${DCP_AGENT}[${OCF_RESOURCE_INSTANCE}]: pid $pid is up" >>"$OCF_RESKEY_logfile"
	ocf_log info "$DCP_AGENT started, pid $pid"
	return $OCF_SUCCESS
}

# Hook for agents: runs before the process is launched (e.g. resetting a heartbeat file).
dcp_prepare_start() { return 0; }
# Hook for agents: files to remove once the process is gone.
dcp_cleanup() { return 0; }

dcp_stop() {
	local pid
	if pid=$(dcp_pid); then
		dcp_stop_pid "$pid"
		return $?
	fi
	# Leader gone (kill -9, crash) but members of its group left behind, e.g. worker
	# children: the group id cannot be reused while they exist, so they are ours.
	read -r pid 2>/dev/null <"$OCF_RESKEY_pidfile"
	if ocf_is_decimal "$pid" && ! dcp_alive "$pid" && dcp_group_alive "$pid"; then
		ocf_log warn "$DCP_AGENT: pid $pid is gone but its process group is not; stopping the group"
		dcp_stop_pid "$pid" 1
		return $?
	fi
	rm -f "$OCF_RESKEY_pidfile"
	dcp_cleanup
	return $OCF_SUCCESS
}

# dcp_stop_pid PID [GRACE]: stops PID and its process group; also used, with a short grace, for
# the pid a start just launched when it did not become healthy in time.
dcp_stop_pid() {
	local pid=$1 grace=${2:-$OCF_RESKEY_stop_grace} timeout_ms deadline
	timeout_ms=${OCF_RESKEY_CRM_meta_timeout:-60000}
	ocf_is_decimal "$timeout_ms" || timeout_ms=60000
	ocf_is_decimal "$grace" || grace=$OCF_RESKEY_stop_grace_default
	[ "$grace" -gt $(( timeout_ms / 1000 - 8 )) ] && grace=$(( timeout_ms / 1000 - 8 ))
	[ "$grace" -lt 1 ] && grace=1
	ocf_log info "$DCP_AGENT: SIGTERM to pid $pid (grace ${grace}s)"
	kill -s TERM "$pid" 2>/dev/null
	# a SIGSTOPped process must run again to act on SIGTERM, and so must its children
	kill -s CONT -- "-$pid" 2>/dev/null || kill -s CONT "$pid" 2>/dev/null
	deadline=$(( $(dcp_now_ms) + grace * 1000 ))
	while [ "$(dcp_now_ms)" -lt "$deadline" ] && dcp_group_alive "$pid"; do
		sleep 0.2
	done
	if dcp_group_alive "$pid"; then
		ocf_log warn "$DCP_AGENT: process group $pid still alive after ${grace}s; sending SIGKILL"
		kill -s KILL -- "-$pid" 2>/dev/null
		deadline=$(( $(dcp_now_ms) + 5000 ))
		while [ "$(dcp_now_ms)" -lt "$deadline" ] && dcp_group_alive "$pid"; do
			sleep 0.2
		done
	fi
	if dcp_group_alive "$pid"; then
		ocf_exit_reason "$DCP_AGENT: process group $pid survived SIGKILL"
		return $OCF_ERR_GENERIC
	fi
	rm -f "$OCF_RESKEY_pidfile"
	dcp_cleanup
	ocf_log info "$DCP_AGENT stopped (pid $pid)"
	return $OCF_SUCCESS
}

# Configuration errors (6) are fatal cluster-wide; missing files on this node are 5;
# during a probe a missing installation only means "not running here".
dcp_validate() {
	local p rc
	for p in stop_grace check_timeout; do
		local v="OCF_RESKEY_$p"
		if ! ocf_is_decimal "${!v}" || [ "${!v}" -lt 1 ]; then
			ocf_exit_reason "$p must be a positive integer, got '${!v}'"
			return $OCF_ERR_CONFIGURED
		fi
	done
	dcp_agent_validate || return $?
	if ! id -u "$OCF_RESKEY_user" >/dev/null 2>&1; then
		ocf_exit_reason "user $OCF_RESKEY_user does not exist"
		return $OCF_ERR_INSTALLED
	fi
	dcp_build_env || return $?
	if [ -z "$(dcp_env_value DATABASE_URL)" ]; then
		ocf_exit_reason "no DATABASE_URL: set it in env_file or the database_url parameter"
		return $OCF_ERR_CONFIGURED
	fi
	if [ ! -x "$DCP_PYTHON" ]; then
		ocf_exit_reason "$DCP_PYTHON is missing (venv=$OCF_RESKEY_venv)"
		return $OCF_ERR_INSTALLED
	fi
	if [ ! -f "$DCP_MANAGE" ]; then
		ocf_exit_reason "$DCP_MANAGE is missing (app_dir=$OCF_RESKEY_app_dir)"
		return $OCF_ERR_INSTALLED
	fi
	for p in setsid setpriv timeout getent $DCP_BINARIES; do
		if ! have_binary "$p"; then
			ocf_exit_reason "Setup problem: couldn't find command: $p"
			return $OCF_ERR_INSTALLED
		fi
	done
	p=$(dirname "$OCF_RESKEY_pidfile")
	mkdir -p "$p" 2>/dev/null
	if [ ! -w "$p" ]; then
		ocf_exit_reason "pid file directory $p is not writable"
		return $OCF_ERR_PERM
	fi
	return $OCF_SUCCESS
}

dcp_main() {
	local rc
	case $__OCF_ACTION in
		meta-data) dcp_meta_data; exit $OCF_SUCCESS;;
		usage|help) dcp_usage; exit $OCF_SUCCESS;;
		# stop must work whatever the configuration says, or Pacemaker fences the node
		stop) dcp_stop; exit $?;;
		start|validate-all) dcp_validate; rc=$?
			[ $rc -ne $OCF_SUCCESS ] && exit $rc;;
		monitor) ;;
		*) dcp_usage; exit $OCF_ERR_UNIMPLEMENTED;;
	esac
	case $__OCF_ACTION in
		start) dcp_start;;
		monitor) dcp_monitor;;
		validate-all) exit $OCF_SUCCESS;;
	esac
	rc=$?
	ocf_log debug "${OCF_RESOURCE_INSTANCE} $__OCF_ACTION returned $rc"
	exit $rc
}

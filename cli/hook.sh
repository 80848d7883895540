#!/bin/sh
# memlane's Claude Code command hook: relays the hook input (stdin) to the warm daemon.
#
# Usage: hook.sh <EventName> <socket path> <memlane executable>
#
# Prints the daemon's hook output when it has some. On any failure (daemon down, too slow,
# HTTP error) it prints nothing and still exits 0: a memory system never breaks a session.
# One exception: a prompt the daemon did not take is handed to `memlane hook`, which spools a
# marked one (#decision, #note, #insight) for the daemon's replay and tells the user so.
# MEMLANE_HOOK_TIMEOUT (seconds) overrides the per-event deadline.
# POSIX sh only, and no Python on the normal path: this runs before every prompt.

event=$1
socket=$2
memlane=$3
body=
down=

# The event name becomes part of a URL: letters only.
case $event in
    '' | *[!A-Za-z]*) exit 0 ;;
esac

# Seconds to wait for the daemon, each under the hook's timeout in settings.json. A prompt
# waits on the answer; SessionEnd shares Claude Code's 1.5 s budget; PreCompact may store.
deadline() {
    case $1 in
        UserPromptSubmit | SessionStart) echo 2 ;;
        PreCompact) echo 5 ;;
        SessionEnd) echo 1.2 ;;
        *) echo 1 ;;
    esac
}

# Whether a service manager runs memlane: it restarts the daemon itself, so never start a
# second copy beside it.
managed() {
    if command -v systemctl >/dev/null 2>&1 \
        && systemctl --user is-active --quiet memlane 2>/dev/null; then
        return 0
    fi
    command -v launchctl >/dev/null 2>&1 && launchctl list dev.memlane >/dev/null 2>&1
}

# Start the daemon for the next prompt without waiting for it: this session starts without a
# briefing rather than stall on loading the model.
start_daemon() {
    managed && return
    detach=
    command -v setsid >/dev/null 2>&1 && detach=setsid
    nohup $detach "$memlane" up </dev/null >/dev/null 2>&1 &
}

post() {
    printf '%s' "$input" | curl -sf --max-time "$limit" --unix-socket "$socket" \
        -H 'Content-Type: application/json' --data-binary @- \
        "http://localhost/hooks/$event" 2>/dev/null
}

# Without curl: the same request through the CLI, slower to start, bounded the same way.
relay() {
    if command -v timeout >/dev/null 2>&1; then
        printf '%s' "$input" | timeout "$1" "$memlane" hook "$event" --timeout "$1" 2>/dev/null
    else
        printf '%s' "$input" | "$memlane" hook "$event" --timeout "$1" 2>/dev/null
    fi
}

# Whether the input may hold a marked prompt (the relay decides exactly; without grep, ask it).
marked() {
    [ "$event" = UserPromptSubmit ] || return 1
    command -v grep >/dev/null 2>&1 || return 0
    printf '%s' "$input" | grep -qiE '#(decision|decided|adr|note|remember|insight|learned|til)'
}

# The hook input (stdin), read by the shell itself: cat may be missing from PATH.
read_input() {
    while IFS= read -r line || [ -n "$line" ]; do
        input="$input$line
"
    done
}

limit=${MEMLANE_HOOK_TIMEOUT:-$(deadline "$event")}
input=
read_input
if command -v curl >/dev/null 2>&1; then
    body=$(post)
    status=$?
    # curl's status 7: nothing accepted the connection, so no daemon is listening.
    [ $status -eq 7 ] && down=yes
    # A marked prompt not taken (down, starting, too slow): the relay spools it.
    [ $status -ne 0 ] && marked && body=$(relay 1)
elif [ -S "$socket" ]; then
    body=$(relay "$limit")
else
    down=yes
    marked && body=$(relay 1)
fi

if [ "$down" = yes ] && [ "$event" = SessionStart ]; then
    start_daemon
fi
case $body in
    '{}') ;;
    '{'*'}') printf '%s\n' "$body" ;;
esac
exit 0

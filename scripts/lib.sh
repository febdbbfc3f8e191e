# lib.sh - shell helpers shared by tests/pgtmp, scripts/devstack and the
# benchmarks.  Source it; it defines functions only.

# Is a TCP port on the loopback already listening?
port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# Print a free loopback port in 20000..59999 (racy by nature: callers retry
# when the bind fails).
pick_port() {
    local p i
    for i in $(seq 1 50); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    echo "no free loopback port found" >&2
    return 1
}

# Wait until a TCP port on 127.0.0.1 listens, at most $2 tenths of a second.
wait_port() {
    local port=$1 tenths=${2:-100} i
    for i in $(seq 1 "$tenths"); do
        port_in_use "$port" && return 0
        sleep 0.1
    done
    return 1
}

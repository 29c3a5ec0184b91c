# shellcheck shell=bash
# ports.sh - picking a free TCP port on 127.0.0.1 for a server a script starts (sourced).
#
# The port is drawn below the kernel's ephemeral range: a port in that range can be handed,
# between our check and the server's bind, to any outgoing connection on the machine (a
# test's HTTP client, a simulator), and the server then fails with "Address already in
# use". Below the range only another explicit pick can take it.

# True when something listens on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The low end of the ephemeral range (32768 when it cannot be read).
ephemeral_low() {
    local low
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [[ $low =~ ^[0-9]+$ ]] && ((low > 12000 && low < 65536)) || low=32768
    echo "$low"
}

# Prints a free port in [10000, ephemeral_low); fails after 100 tries.
pick_free_port() {
    local p span
    span=$(($(ephemeral_low) - 10000))
    for _ in $(seq 1 100); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
        port_in_use "$p" || {
            echo "$p"
            return 0
        }
    done
    return 1
}

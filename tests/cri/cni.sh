#!/bin/sh
# A CNI plugin for tests/cri.rs that touches nothing but the pod's own
# network namespace: as `loopback` it sets lo up; as `berth-test-dummy` it
# makes eth0 there, one end of a veth pair whose other end stays in the pod
# too, with 10.88.0.2/24 (containerd's CRI wants an eth0 with an address). DEL, CHECK, GC and STATUS have nothing to do.
set -eu
cfg=$(cat)
ver=$(printf '%s' "$cfg" | sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p')
case ${CNI_COMMAND:-} in
VERSION)
    echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}' ;;
ADD)
    if [ "$CNI_IFNAME" = lo ]; then
        nsenter --net="$CNI_NETNS" ip link set lo up
        addr=127.0.0.1/8
    else
        nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type veth peer name berth-peer0
        nsenter --net="$CNI_NETNS" ip addr add 10.88.0.2/24 dev "$CNI_IFNAME"
        nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up
        addr=10.88.0.2/24
    fi
    printf '{"cniVersion":"%s","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"%s","interface":0}]}\n' \
        "${ver:-0.4.0}" "$CNI_IFNAME" "$CNI_NETNS" "$addr" ;;
*) ;;
esac

# Sourced by the VM suites (cgroup-v2.sh, systemd.sh): the guest's packages
# are unpacked, not installed, so make the iptables links
# update-alternatives would (netavark and CRIU run iptables), and load the
# netfilter and socket-diag modules of VM_NET_MODULES (the Makefile's
# VM_NET_MODULES and VM_CRIU_MODULES; nf_tables is asked for by an alias
# the guest's modprobe does not resolve).
if [ -x /usr/sbin/xtables-nft-multi ]; then
    # shellcheck disable=SC2086 # a list of module names
    modprobe -a ${VM_NET_MODULES:-} 2>/dev/null || true
    for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
        [ -e /usr/sbin/$t ] || ln -s xtables-nft-multi /usr/sbin/$t
    done
fi

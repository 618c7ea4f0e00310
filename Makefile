# berth: `make run` (demo container) and `make test` (every test), each on a
# fresh Debian 12 machine as root; both install what they need.

CARGO ?= cargo
# The cgroup-v2-only test VM (tests/vm/vm.py, docs/vm.md).
VM := python3 tests/vm/vm.py
# What the VM suites use beyond the guest's busybox: ip(8) to make and move
# network devices, util-linux mount(8) for bind and propagation set-ups,
# runc for `runc spec` (the configs berth must start as runc does), uidmap,
# setpriv (util-linux) and pkill (procps) for the rootless tests.
VM_PKGS := iproute2 mount runc uidmap util-linux procps
# A real systemd with its system bus, for the systemd cgroup driver (and
# dbus-user-session: a user's bus for its manager, rootless). That VM boots
# with AppArmor off (VM_SYSTEMD_APPEND): the guest image leaves /usr/share
# out, so apparmor_parser cannot load profiles there, and dockerd refuses
# to run containers where AppArmor is on and its profile cannot be loaded.
VM_SYSTEMD_PKGS := systemd dbus dbus-user-session containerd podman docker.io bash python3
VM_SYSTEMD_APPEND := apparmor=0
APT_PKGS := busybox-static gcc libc6-dev libseccomp-dev qemu-system-x86 iproute2 python3 zstd umoci runc containerd podman \
	docker-registry skopeo apache2-utils openssl docker.io protobuf-compiler netavark aardvark-dns iptables slirp4netns criu
FIXTURES := target/fixtures
# .cargo/config.toml builds for an explicit target (static linking).
OUT := target/x86_64-unknown-linux-gnu
DEMO := target/demo

.PHONY: all deps build release fixtures run test test-host test-vm soak bench symbol-order lint clean

all: release

# Debian packages: busybox-static (fixture rootfs), libseccomp-dev (linked
# statically into berth, see .cargo/config.toml), qemu-system-x86 (the
# cgroup v2 VM), python3 and zstd (image fixtures), umoci (the reference
# unpacker the image tests compare with), runc, containerd and podman (the
# real clients berth must satisfy, each also run against runc),
# docker-registry, skopeo, apache2-utils (htpasswd) and openssl (the
# registries tests/registry.rs starts, pushes to, and secures), docker.io
# (Docker, another client), protobuf-compiler (protoc, which builds the
# CRI bindings tests/cri.rs uses), netavark, aardvark-dns, iptables and
# slirp4netns (the network stacks of `image run`, tests/network.rs and
# the rootless network test), criu (checkpoint and restore; it cannot dump
# on this host's kernel, so the host tests its failure paths and the VM the
# rest). apt-get update runs only when something
# is missing. The packages' services are not ours to start: on a machine
# without a policy-rc.d, one is put in place for the install (and removed).
deps:
	@missing=""; for p in $(APT_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    rc=/usr/sbin/policy-rc.d; own=""; \
	    [ -e $$rc ] || { printf '#!/bin/sh\nexit 101\n' > $$rc; chmod 755 $$rc; own=1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; st=$$?; \
	    [ -z "$$own" ] || rm -f $$rc; [ $$st = 0 ] || exit $$st; \
	fi
	@command -v $(CARGO) >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo; }

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

fixtures: deps
	@[ -x $(FIXTURES)/busybox/bin/busybox ] || sh rootfs-fixtures/busybox-rootfs.sh $(FIXTURES)/busybox
	@[ -f $(FIXTURES)/images/hostile/index.json ] || python3 rootfs-fixtures/make-images.py $(FIXTURES)/images $(FIXTURES)/busybox
	@for p in mempolicy pause syscall procmount udpecho; do [ -x $(FIXTURES)/$$p ] || gcc -O2 -static -o $(FIXTURES)/$$p rootfs-fixtures/$$p.c || exit 1; done

# A demo container: prints its hostname, its pid (1) and its memory limit.
run: release fixtures
	rm -rf $(DEMO) && mkdir -p $(DEMO)/bundle
	cp -a $(FIXTURES)/busybox $(DEMO)/bundle/rootfs
	cp rootfs-fixtures/demo-config.json $(DEMO)/bundle/config.json
	./$(OUT)/release/berth --root $(DEMO)/state run -b $(DEMO)/bundle berth-demo

test: test-host test-vm

# Unit tests and the integration suite on this host (cgroup v1 or hybrid
# here). Integration tests share the host's mount table and cgroup tree, so
# they run one at a time to make the leak check exact. The release build is
# for the memory guard (tests/runtime/footprint.rs), which measures what
# ships.
test-host: build release fixtures
	$(CARGO) test --workspace -- --test-threads=1

# The integration suites inside a cgroup-v2-only VM, as much of them as
# proves that hierarchy and kernel 6.1 (the VM is emulated, so host-only
# behaviour is not repeated there): cgroups, exec into a v2 cgroup, the
# clone(2) fallback, cgroup and time namespaces, masks and propagation with
# 6.1's mount API, network devices, the eBPF device program, seccomp, the
# binary's protection, overlay without lowerdir+, rootless containers and
# images (with a cgroup subtree delegated to the user), the bridge network of
# `image run`, checkpoint and restore with CRIU. Then the systemd driver
# under a real systemd (tests/vm/systemd.sh through with-systemd.sh).
# Fixtures are built on the host.
VM_RUNTIME := cgroups:: exec:: lifecycle::lifecycle_states lifecycle::features contract::update_ contract::spec_ contract::a_frozen contract::events_ contract::cloned_ contract::userns_ \
	compat::runc_spec mounts::default_mounts process::user_namespace_maps \
	spec13::cgroup_unified spec13::memory_policy spec13::net_devices \
	spec13::rootfs_propagation spec13::tmpcopyup
VM_SECURITY := device_cgroup_rules listed_devices device_access seccomp_actions seccomp_notify seccomp_newer runtime_binary
VM_IMAGE := image_run_busybox hundred_layers
VM_ROOTLESS := lifecycle_exec_kill subordinate_mappings limits_without a_delegated_cgroup images_as
# The bridge case of `image run` (netavark, aardvark-dns, iptables-nft on
# 6.1), with the netfilter modules it needs (crc32c_generic first:
# libcrc32c, which nf_tables needs, does not load without it).
VM_NETWORK := bridge_publishes
VM_NET_PKGS := netavark aardvark-dns iptables python3
VM_NET_MODULES := crc32c_generic libcrc32c nf_tables nft_compat nft_chain_nat nf_nat nf_conntrack nft_ct \
	xt_addrtype xt_comment xt_conntrack xt_MASQUERADE xt_mark xt_nat xt_tcpudp
# Checkpoint and restore (tests/checkpoint.rs, runc beside berth): CRIU,
# with what it asks of the kernel: conntrack over netlink (its netns dump
# fails with EINVAL without it), iptables tables for the network lock, and
# the socket-diag modules it collects sockets through; netfilter.sh loads
# them. Not kmod: its modprobe would replace busybox's, which the kernel
# calls for aliases (rtnl-link-dummy) and which reads the guest's
# busybox-made modules.dep.
VM_CRIU := criu_
VM_CRIU_PKGS := criu
VM_CRIU_MODULES := nfnetlink nf_conntrack_netlink x_tables ip_tables ip6_tables iptable_filter ip6table_filter \
	inet_diag tcp_diag udp_diag unix_diag netlink_diag af_packet_diag raw_diag
test-vm: build fixtures
	VM_EXTRA_PKGS="$(VM_PKGS)" $(VM) setup
	@rm -rf target/vm && mkdir -p target/vm
	@for t in runtime security image rootless network checkpoint reliability clients cri; do \
	    bin=$$($(CARGO) test --no-run --test $$t --message-format=json 2>/dev/null \
	        | grep '"kind":\["test"\]' | grep "\"name\":\"$$t\"" \
	        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1); \
	    [ -n "$$bin" ] || { echo "cannot find the $$t test binary" >&2; exit 1; }; \
	    echo "/host/$${bin#$(CURDIR)/}" > target/vm/$$t.bin; \
	done
	@args=""; for t in runtime security image rootless network checkpoint; do \
	    case $$t in runtime) f="$(VM_RUNTIME)";; security) f="$(VM_SECURITY)";; image) f="$(VM_IMAGE)";; \
	        rootless) f="$(VM_ROOTLESS)";; network) f="$(VM_NETWORK)";; checkpoint) f="$(VM_CRIU)";; esac; \
	    args="$$args $${args:+--next} $$(cat target/vm/$$t.bin) $$f"; \
	done; \
	echo "cgroup v2 VM: runtime, security, image, rootless, network and checkpoint tests (one boot)"; \
	VM_TIMEOUT=2400 VM_EXTRA_PKGS="$(VM_PKGS) $(VM_NET_PKGS) $(VM_CRIU_PKGS)" \
	    VM_EXTRA_MODULES="$(VM_NET_MODULES) $(VM_CRIU_MODULES)" \
	    $(VM) run "$(CURDIR)" env VM_NET_MODULES="$(VM_NET_MODULES) $(VM_CRIU_MODULES)" BERTH_TEST_CRIU=1 \
	    sh /host/tests/vm/cgroup-v2.sh $$args
	@echo "cgroup v2 VM under systemd: the systemd cgroup driver"
	VM_TIMEOUT=2700 VM_MEM=2G VM_EXTRA_PKGS="$(VM_PKGS) $(VM_SYSTEMD_PKGS) $(VM_CRIU_PKGS) iptables" VM_APPEND="$(VM_SYSTEMD_APPEND)" \
	    VM_EXTRA_MODULES="$(VM_NET_MODULES) $(VM_CRIU_MODULES)" \
	    $(VM) run --systemd "$(CURDIR)" env SYSTEMD_LOG=/host/target/vm/systemd.log \
	    VM_NET_MODULES="$(VM_NET_MODULES) $(VM_CRIU_MODULES)" sh /host/tests/vm/systemd.sh $$(cat target/vm/runtime.bin) $$(cat target/vm/reliability.bin) \
	    $$(cat target/vm/clients.bin) $$(cat target/vm/cri.bin) $$(cat target/vm/rootless.bin)

# The long reliability run: 1000 lifecycles, 200 SIGKILL fault injections,
# 100 concurrent lifecycles, then each fuzz target for FUZZ_SECONDS
# (cargo-fuzz on the stable toolchain through RUSTC_BOOTSTRAP). Not part of
# `make test`.
FUZZ_SECONDS ?= 60
soak: build fixtures
	BERTH_SOAK=1 $(CARGO) test --test reliability -- --test-threads=1 --include-ignored --nocapture
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p target/fuzz-corpus/config target/fuzz-corpus/unpack
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run config ../target/fuzz-corpus/config corpus/config -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run unpack ../target/fuzz-corpus/unpack corpus/unpack -- -max_total_time=$(FUZZ_SECONDS)

# berth, crun and runc side by side (tests/bench/bench.py), interleaved, in
# a private mount namespace where /sys/fs/cgroup is a cgroup2 view (crun
# refuses hybrid hosts); then the image unpack benchmark
# (tests/bench/image_bench.py: a debootstrap-built Debian image, cached in
# target/bench/image, against umoci and tar -xzf; and pulled from a registry
# on loopback against skopeo + umoci and podman), and in the cgroup v2 VM
# the kernel memory per container (tests/bench/kmem.sh), the smallest
# memory limit a container starts with (tests/bench/minmem.sh), and under
# systemd what the systemd cgroup driver costs per lifecycle against
# cgroupfs (tests/bench/systemd.sh). Results:
# target/bench.json, target/bench-image.json, target/bench-net.json
# (`image run --rm -p` against `podman run --rm -p`, tests/bench/net_bench.py,
# in a network namespace of its own) and tables; see
# docs/benchmarks.md. BENCH_N sets the iterations (default 200).
bench: release fixtures
	@for p in runc crun debootstrap; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc crun debootstrap; break; }; done
	mkdir -p target/bench/image
	gcc -O2 -o target/bench/floor tests/bench/floor.c
	gcc -O2 -o target/bench/rss tests/bench/rss.c
	unshare -m --propagation private python3 tests/bench/bench.py $(OUT)/release/berth \
	    $(FIXTURES)/busybox target/bench/floor target/bench/rss target/bench.json
	python3 tests/bench/image_bench.py $(OUT)/release/berth target/bench/image target/bench-image.json
	unshare -n -m --propagation private python3 tests/bench/net_bench.py $(OUT)/release/berth $(FIXTURES) target/bench-net.json
	VM_EXTRA_PKGS="$(VM_PKGS)" $(VM) setup
	VM_TIMEOUT=1200 VM_EXTRA_PKGS="$(VM_PKGS)" $(VM) run "$(CURDIR)" sh /host/tests/bench/kmem.sh /host/$(OUT)/release/berth /host/$(FIXTURES)/busybox
	VM_TIMEOUT=1200 VM_EXTRA_PKGS="$(VM_PKGS)" $(VM) run "$(CURDIR)" sh /host/tests/bench/minmem.sh /host/$(OUT)/release/berth /host/$(FIXTURES)/busybox
	VM_TIMEOUT=1800 VM_MEM=2G VM_EXTRA_PKGS="$(VM_PKGS) $(VM_SYSTEMD_PKGS) crun" VM_APPEND="$(VM_SYSTEMD_APPEND)" \
	    $(VM) run --systemd "$(CURDIR)" sh /host/tests/bench/systemd.sh /host/$(OUT)/release/berth /host/$(FIXTURES)/busybox
	python3 tests/bench/report.py docs/benchmarks.md target/bench.json target/bench-image.json target/bench-systemd.json \
	    target/bench-net.json

# Regenerates src/symbol-order.txt, the link order of the functions (and the
# few read-only tables every start reads) that the
# runtime commands run (build.rs passes it to the linker for release
# builds, see docs/benchmarks.md): each command runs once from the release
# build under tests/bench/symbol_order.py's ptrace tracer, then berth is
# relinked in the new order. Run it after changes to the create, start or
# exec path, or to dependencies (symbol names change with them); `make
# bench` reports how many of the listed names the binary still has.
symbol-order: release fixtures
	python3 tests/bench/symbol_order.py $(OUT)/release/berth $(FIXTURES)/busybox src/symbol-order.txt
	$(CARGO) build --release

# Formatting and clippy (with the workspace's lints: every unsafe block
# documented) on every target, tests included. CI runs it before `make test`.
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean

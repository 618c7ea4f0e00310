# berth: `make run` (demo container) and `make test` (every test), each on a
# fresh Debian 12 machine as root; both install what they need.

CARGO ?= cargo
VM := ../shared/vm/run-in-vm.sh
APT_PKGS := busybox-static gcc libc6-dev libseccomp-dev qemu-system-x86 iproute2 python3 zstd umoci runc containerd podman
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
# real clients berth must satisfy, each also run against runc). apt-get
# update runs only when something is missing.
deps:
	@missing=""; for p in $(APT_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo; }

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

fixtures: deps
	@[ -x $(FIXTURES)/busybox/bin/busybox ] || sh rootfs-fixtures/busybox-rootfs.sh $(FIXTURES)/busybox
	@[ -f $(FIXTURES)/images/hostile/index.json ] || python3 rootfs-fixtures/make-images.py $(FIXTURES)/images $(FIXTURES)/busybox
	@[ -x $(FIXTURES)/mempolicy ] || gcc -O2 -static -o $(FIXTURES)/mempolicy rootfs-fixtures/mempolicy.c

# A demo container: prints its hostname, its pid (1) and its memory limit.
run: release fixtures
	rm -rf $(DEMO) && mkdir -p $(DEMO)/bundle
	cp -a $(FIXTURES)/busybox $(DEMO)/bundle/rootfs
	cp rootfs-fixtures/demo-config.json $(DEMO)/bundle/config.json
	./$(OUT)/release/berth --root $(DEMO)/state run -b $(DEMO)/bundle berth-demo

test: test-host test-vm

# Unit tests and the integration suite on this host (cgroup v1 or hybrid
# here). Integration tests share the host's mount table and cgroup tree, so
# they run one at a time to make the leak check exact.
test-host: build fixtures
	$(CARGO) test --workspace -- --test-threads=1

# The integration suites inside a cgroup-v2-only VM: all runtime and
# security tests (the device cgroup is an eBPF program there), and the image
# tests that need neither umoci nor user.* xattrs (the guest's
# store is on tmpfs, which holds none on 6.1). Its 6.1 kernel exercises the
# overlay mount without fsconfig lowerdir+. Fixtures are built on the host.
test-vm: build fixtures
	$(VM) --setup >/dev/null
	@# The runtime-spec schema samples, for the VM (which sees only this tree).
	@rm -rf target/specs && mkdir -p target/specs/runtime-spec/schema && \
	    cp -r ../shared/specs/runtime-spec/schema/test target/specs/runtime-spec/schema/
	@for t in runtime security image; do \
	    bin=$$($(CARGO) test --no-run --test $$t --message-format=json 2>/dev/null \
	        | grep '"kind":\["test"\]' | grep "\"name\":\"$$t\"" \
	        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1); \
	    [ -n "$$bin" ] || { echo "cannot find the $$t test binary" >&2; exit 1; }; \
	    filter=""; [ $$t = image ] && filter="--skip multi_layer_rootfs_matches_umoci --skip ls_inspect_rm_prune"; \
	    echo "cgroup v2 VM: $$t tests"; \
	    VM_TIMEOUT=1200 $(VM) "$(CURDIR)" sh /host/tests/vm/cgroup-v2.sh /host/$${bin#$(CURDIR)/} $$filter || exit 1; \
	done

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
# target/bench/image, against umoci and tar -xzf), and in the cgroup v2 VM
# the kernel memory per container (tests/bench/kmem.sh) and the smallest
# memory limit a container starts with (tests/bench/minmem.sh). Results:
# target/bench.json, target/bench-image.json and tables; see
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
	$(VM) --setup >/dev/null
	VM_TIMEOUT=1200 $(VM) "$(CURDIR)" sh /host/tests/bench/kmem.sh /host/$(OUT)/release/berth /host/$(FIXTURES)/busybox
	VM_TIMEOUT=1200 $(VM) "$(CURDIR)" sh /host/tests/bench/minmem.sh /host/$(OUT)/release/berth /host/$(FIXTURES)/busybox

# Regenerates src/symbol-order.txt, the link order of the functions the
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

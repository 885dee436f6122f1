# zrep: the same commands the README and CI use.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN := bin/zrep
# An execution count, not a duration: Go 1.26's fuzzing coordinator can
# fail at a -fuzztime deadline without a failing input (golang/go#75804).
FUZZTIME ?= 50000x
# The version is the git tag, or 0.0.0-dev.<commits>.<hash> between tags.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo 0.0.0-dev.$$(git rev-list --count HEAD 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
PREFIX ?= /usr/local
DESTDIR ?=
# Where systemd looks for units under PREFIX (/usr/local/lib/systemd/system
# is on its search path too).
UNITDIR ?= $(PREFIX)/lib/systemd/system
ZSHDIR ?= $(PREFIX)/share/zsh/site-functions
DOCDIR ?= $(PREFIX)/share/doc/zrep

.PHONY: all build test unit e2e fuzz lint bench charts demo demo-clean lab clean test-openzfs docs install uninstall deb test-install

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# The man page and the completions, generated from the command definitions
# by the binary itself, and the systemd units with the binary's path.
docs: build
	@mkdir -p build/completions build/systemd
	$(BIN) generate man >build/zrep.8
	$(BIN) generate bash >build/completions/zrep
	$(BIN) generate zsh >build/completions/_zrep
	$(BIN) generate fish >build/completions/zrep.fish
	for u in zrep@.service zrep@.timer; do \
		sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DOCDIR@|$(DOCDIR)|g' dist/systemd/$$u >build/systemd/$$u; \
	done

install: docs
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/zrep
	install -D -m 0644 build/zrep.8 $(DESTDIR)$(PREFIX)/share/man/man8/zrep.8
	install -D -m 0644 build/completions/zrep $(DESTDIR)$(PREFIX)/share/bash-completion/completions/zrep
	install -D -m 0644 build/completions/_zrep $(DESTDIR)$(ZSHDIR)/_zrep
	install -D -m 0644 build/completions/zrep.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/zrep.fish
	install -D -m 0644 build/systemd/zrep@.service $(DESTDIR)$(UNITDIR)/zrep@.service
	install -D -m 0644 build/systemd/zrep@.timer $(DESTDIR)$(UNITDIR)/zrep@.timer
	install -D -m 0644 dist/example.env $(DESTDIR)$(DOCDIR)/example.env

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/zrep $(DESTDIR)$(PREFIX)/share/man/man8/zrep.8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/zrep $(DESTDIR)$(ZSHDIR)/_zrep \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/zrep.fish \
		$(DESTDIR)$(UNITDIR)/zrep@.service $(DESTDIR)$(UNITDIR)/zrep@.timer $(DESTDIR)$(DOCDIR)/example.env

# A Debian package in build/, installing under /usr (dist/deb.sh).
# Hardened as Debian asks: position independent, read-only relocations.
deb:
	$(MAKE) docs PREFIX=/usr DOCDIR=/usr/share/doc/zrep \
		LDFLAGS="$(LDFLAGS) -linkmode=external -extldflags=-Wl,-z,relro,-z,now" GOFLAGS="$(GOFLAGS) -buildmode=pie"
	VERSION=$(VERSION) dist/deb.sh

# Checks of what zrep installs, against the programs that consume it:
# promtool and node_exporter read the metrics, man renders the page,
# systemd-analyze verifies the units, bash completes, dpkg and lintian take
# the package. Needs root; installs what it needs with apt-get.
test-install:
	GO=$(GO) dist/test-install.sh

# Unit tests, parser fuzzing and the end-to-end tests on the zfs-fuse lab.
# As root the end-to-end tests start the lab themselves (lab/lab.sh up);
# with CI=true they fail instead of skipping when it cannot run. The tag
# lab builds the endpoints' tests on real ZFS and ssh, which a plain go
# test leaves out.
# -p 1: the end-to-end and endpoint tests share one zfs-fuse daemon and the
# lab's sshd, whose log the tests read to count logins.
test: lint
	$(GO) test -race -count=1 -p 1 -tags lab ./...
	$(MAKE) fuzz

# Unit tests only: no zfs, no lab.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e:
	$(GO) test -count=1 -v ./e2e/

# Each fuzz target runs briefly; a crash fails the build.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags lab ./...

bench: build
	bench/run.sh

# The charts of docs/performance.md, from the figures it reports.
charts:
	$(GO) run ./bench/charts -o docs/charts docs/charts/figures.tsv

demo: build
	lab/demo.sh

demo-clean:
	lab/demo.sh clean

lab:
	lab/lab.sh up

clean:
	rm -rf bin build

# The OpenZFS 2.3 tier: builds (or reuses, from /var/cache/zrep-openzfs) a
# Debian guest image with OpenZFS, boots it under qemu, runs e2e/ built with
# the tag openzfs against it and stops it. Needs root. OPENZFS_TEST_FLAGS go
# to go test, e.g. OPENZFS_TEST_FLAGS='-run TestModern'.
test-openzfs:
	GO=$(GO) openzfs/run.sh $(OPENZFS_TEST_FLAGS)

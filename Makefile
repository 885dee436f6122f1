# zrep: the same commands the README and CI use.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN := bin/zrep
# An execution count, not a duration: Go 1.26's fuzzing coordinator can
# fail at a -fuzztime deadline without a failing input (golang/go#75804).
FUZZTIME ?= 50000x

.PHONY: all build test unit e2e fuzz lint bench demo demo-clean lab clean test-openzfs

all: build

build:
	$(GO) build -o $(BIN) .

# Unit tests, parser fuzzing and the end-to-end tests on the zfs-fuse lab.
# As root the end-to-end tests start the lab themselves (lab/lab.sh up);
# with CI=true they fail instead of skipping when it cannot run.
# -p 1: the end-to-end and endpoint tests share one zfs-fuse daemon and the
# lab's sshd, whose log the tests read to count logins.
test: lint
	$(GO) test -race -count=1 -p 1 ./...
	$(MAKE) fuzz

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
	$(GO) vet ./...

bench: build
	bench/run.sh

demo: build
	lab/demo.sh

demo-clean:
	lab/demo.sh clean

lab:
	lab/lab.sh up

clean:
	rm -rf bin

# The OpenZFS 2.3 tier: builds (or reuses, from /var/cache/zrep-openzfs) a
# Debian guest image with OpenZFS, boots it under qemu, runs e2e/ built with
# the tag openzfs against it and stops it. Needs root. OPENZFS_TEST_FLAGS go
# to go test, e.g. OPENZFS_TEST_FLAGS='-run TestModern'.
test-openzfs:
	GO=$(GO) openzfs/run.sh $(OPENZFS_TEST_FLAGS)

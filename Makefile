# casewatch — plain Makefile. `make` builds bin/casewatchd and bin/casewatch;
# `make test` runs every test; `make test SAN=1` does so under ASan+UBSan.

CC ?= cc
PKGS := $(shell sh tests/deps.sh pkg-config)
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(SAN),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT := -O1
else
BUILD := build/rel
SANFLAGS :=
OPT := -O2
endif
BIN := $(if $(filter 1,$(SAN)),$(BUILD)/bin,bin)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) cmocka 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= $(OPT) -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes $(SANFLAGS) \
          -DCW_VERSION='"$(VERSION)"' $(PKG_CFLAGS)
LDFLAGS += $(SANFLAGS)
LIBS = $(PKG_LIBS) -lcsv -lm

LIB_SRC := $(wildcard proto/*.c) $(filter-out daemon/main.c,$(wildcard daemon/*.c)) \
           $(filter-out adapters/casewatch.c,$(wildcard adapters/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
TEST_HELPERS := $(BUILD)/tests/integration/cw_testredis.o
TEST_BINS := $(UNIT_SRC:%.c=$(BUILD)/%) $(INTEG_SRC:%.c=$(BUILD)/%)
BENCH_BINS := $(BUILD)/tests/bench/bench_clocks $(BUILD)/tests/bench/bench_cases $(BUILD)/tests/bench/drain $(BUILD)/tests/bench/latency \
              $(BUILD)/tests/bench/alerts $(BUILD)/tests/bench/decode $(BUILD)/tests/bench/readpath

.PHONY: all deps check-deps run test test-valgrind bench fuzz clean install

PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
all: check-deps $(BIN)/casewatchd $(BIN)/casewatch

# Installs what the build and the tests need when something is missing.
deps:
	@sh tests/deps.sh install

check-deps:
	@sh tests/deps.sh check || sh tests/deps.sh install

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libcw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/casewatchd: $(BUILD)/daemon/main.o $(BUILD)/libcw.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/casewatch: $(BUILD)/adapters/casewatch.o $(BUILD)/libcw.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_HELPERS) $(BUILD)/libcw.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs cmocka)

# benchmark programs are built (not run) by the tests, so they cannot rot
test: all $(TEST_BINS) $(BENCH_BINS)
	@CW_BIN=$(abspath $(BIN)) sh tests/run.sh $(TEST_BINS)

# The daemon under valgrind (memcheck, definite leaks are errors) in the
# integration tests that drive it hardest.
VALGRIND_TESTS := $(BUILD)/tests/integration/test_stream $(BUILD)/tests/integration/test_alerts \
                  $(BUILD)/tests/integration/test_faults
test-valgrind: all $(VALGRIND_TESTS)
	@command -v valgrind >/dev/null || { echo "test-valgrind: valgrind is needed (apt-get install valgrind)"; exit 2; }
	@CW_VALGRIND=1 CW_BIN=$(abspath $(BIN)) sh tests/run.sh $(VALGRIND_TESTS)

run: all
	@sh tests/demo.sh $(BIN)

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(BUILD)/libcw.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

BENCH_EVENTS ?= 1000000
bench: all $(BENCH_BINS)
	@sh tests/deps.sh bench
	@sh tests/bench/bench.sh $(BIN) $(BUILD) $(BENCH_EVENTS)

# libFuzzer needs clang; runs each target for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
fuzz: check-deps
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

# Binaries, man pages, the systemd unit (ExecStart at PREFIX), sysusers and
# tmpfiles entries, the configuration (kept when one is there already:
# the new default goes beside it as casewatch.conf.dist) and the holiday
# file and feed's column map beside it (kept too when edited: the shipped
# one goes beside it as .dist).
install: all
	install -D -m 0755 $(BIN)/casewatchd $(DESTDIR)$(PREFIX)/bin/casewatchd
	install -D -m 0755 $(BIN)/casewatch $(DESTDIR)$(PREFIX)/bin/casewatch
	install -D -m 0644 man/casewatchd.8 $(DESTDIR)$(PREFIX)/share/man/man8/casewatchd.8
	install -D -m 0644 man/casewatch.1 $(DESTDIR)$(PREFIX)/share/man/man1/casewatch.1
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's#/usr/local/bin/#$(PREFIX)/bin/#' systemd/casewatchd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/casewatchd.service
	install -D -m 0644 systemd/casewatch.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/casewatch.conf
	install -D -m 0644 systemd/casewatch.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/casewatch.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/casewatch
	if [ -e $(DESTDIR)$(SYSCONFDIR)/casewatch/casewatch.conf ]; then \
	    install -m 0644 systemd/casewatch.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/casewatch.conf.dist; \
	    echo "install: kept $(DESTDIR)$(SYSCONFDIR)/casewatch/casewatch.conf; the new default is casewatch.conf.dist"; \
	else install -m 0644 systemd/casewatch.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/casewatch.conf; fi
	if [ -e $(DESTDIR)$(SYSCONFDIR)/casewatch/holidays-cn.conf ] && \
	   ! cmp -s systemd/holidays-cn.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/holidays-cn.conf; then \
	    install -m 0644 systemd/holidays-cn.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/holidays-cn.conf.dist; \
	    echo "install: kept $(DESTDIR)$(SYSCONFDIR)/casewatch/holidays-cn.conf; the shipped one is holidays-cn.conf.dist"; \
	else install -m 0644 systemd/holidays-cn.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/holidays-cn.conf; fi
	if [ -e $(DESTDIR)$(SYSCONFDIR)/casewatch/feed-columns-cn.conf ] && \
	   ! cmp -s systemd/feed-columns-cn.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/feed-columns-cn.conf; then \
	    install -m 0644 systemd/feed-columns-cn.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/feed-columns-cn.conf.dist; \
	    echo "install: kept $(DESTDIR)$(SYSCONFDIR)/casewatch/feed-columns-cn.conf; the shipped one is feed-columns-cn.conf.dist"; \
	else install -m 0644 systemd/feed-columns-cn.conf $(DESTDIR)$(SYSCONFDIR)/casewatch/feed-columns-cn.conf; fi
	@echo "install: done. Then: systemd-sysusers; systemctl daemon-reload; systemctl enable --now casewatchd"

clean:
	rm -rf build bin

.SECONDARY:

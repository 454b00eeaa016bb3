# casewatch — plain Makefile. `make` builds bin/casewatchd and bin/casewatch;
# `make test` runs every test; `make test SAN=1` does so under ASan+UBSan.

CC ?= cc
PKGS := libuv hiredis msgpack inih jansson
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
BENCH_BINS := $(BUILD)/tests/bench/bench_cases

.PHONY: all deps check-deps run test bench fuzz clean install
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

run: all
	@sh tests/demo.sh $(BIN)

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(BUILD)/libcw.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

bench: all $(BENCH_BINS)
	@sh tests/bench/feed.sh $(BIN) 100000
	@echo "== memory per open case (1,000,000 open cases) =="
	@$(BUILD)/tests/bench/bench_cases 1000000

# libFuzzer needs clang; runs each target for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
fuzz: check-deps
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build bin

.SECONDARY:

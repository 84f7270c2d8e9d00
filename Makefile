# ferry: one non-recursive Makefile. `make` builds bin/ferryd and bin/ferry; `make check` builds
# the same sources with AddressSanitizer and UndefinedBehaviorSanitizer into build/check and runs
# every test against those binaries.

CC ?= cc
PACKAGES := libcurl libmicrohttpd jansson libzstd sqlite3 libxxhash gnutls inih libvirt libxml-2.0 \
	libsystemd
# The version lives in one place, the Debian changelog's first line; both programs print it.
VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' packaging/debian/changelog)
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wno-format-truncation
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -I. $(WARNINGS) -pthread -DFERRY_VERSION='"$(VERSION)"' \
	$(shell pkg-config --cflags $(PACKAGES) 2>/dev/null)
# librbd and librados ship no pkg-config file.
LIBS := $(shell pkg-config --libs $(PACKAGES) 2>/dev/null) -lrbd -lrados -lpthread

# BUILD selects the flavour: build/release (default, -O2) or build/check (sanitizers).
BUILD ?= build/release
ifeq ($(BUILD),build/check)
MODE_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined -DFERRY_FAULT_INJECTION
MODE_LDFLAGS := -fsanitize=address,undefined
else
MODE_CFLAGS := -O2 -g
MODE_LDFLAGS :=
endif
CFLAGS_ALL = $(BASE_CFLAGS) $(MODE_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(MODE_LDFLAGS) $(LDFLAGS)

COMMON_SOURCES := $(wildcard common/*.c)
CATALOG_SOURCES := $(wildcard catalog/*.c)
REPLICATOR_SOURCES := $(wildcard replicator/*.c)
CUTOVER_SOURCES := $(wildcard cutover/*.c)
WEB_SOURCES := $(wildcard web/*.c)
LIBRARY_SOURCES := $(COMMON_SOURCES) $(CATALOG_SOURCES) $(REPLICATOR_SOURCES) $(CUTOVER_SOURCES) \
	$(WEB_SOURCES)
LIBRARY_OBJECTS := $(LIBRARY_SOURCES:%.c=$(BUILD)/%.o)
UNIT_SOURCES := $(wildcard tests/unit/test_*.c)
UNIT_BINARIES := $(UNIT_SOURCES:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check check-unit check-integration unit-binaries bench demo deps lint clean install

all: bin/ferryd bin/ferry

bin/%: $(BUILD)/bin/%
	@mkdir -p bin
	$(Q)rm -f $@ && cp $< $@

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/libferry.a: $(LIBRARY_OBJECTS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/bin/ferryd: $(BUILD)/cmd/ferryd.o $(BUILD)/cmd/ferryd_check.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/bin/ferry: $(BUILD)/cmd/ferry.o $(BUILD)/cmd/ferry_access.o $(BUILD)/cmd/ferry_config.o \
		$(BUILD)/cmd/ferry_operate.o \
		$(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $^ $(LIBS) $(shell pkg-config --libs cmocka)

unit-binaries: $(UNIT_BINARIES) $(BUILD)/bin/ferryd $(BUILD)/bin/ferry

# Installs the Debian packages that building and testing need (as root; a no-op when present).
deps:
	sh tests/install-deps.sh

check:
	sh tests/install-deps.sh
	$(MAKE) lint
	$(MAKE) BUILD=build/check unit-binaries
	$(MAKE) BUILD=build/check check-unit-run check-integration-run

check-unit:
	$(MAKE) BUILD=build/check unit-binaries
	$(MAKE) BUILD=build/check check-unit-run

check-integration:
	$(MAKE) BUILD=build/check unit-binaries
	$(MAKE) BUILD=build/check check-integration-run

.PHONY: check-unit-run check-integration-run
check-unit-run:
	@failed=0; for t in $(UNIT_BINARIES); do echo "== $$t"; $$t || failed=1; done; exit $$failed

check-integration-run:
	FERRY_BIN=$(CURDIR)/$(BUILD)/bin bash tests/run-integration.sh

bench: deps
	$(MAKE) all
	sh bench/copy-bench.sh
	bash bench/rbd-delta-bench.sh
	bash bench/replication-lag-bench.sh
	bash bench/cutover-bench.sh

demo: deps
	$(MAKE) all
	bash tests/demo.sh

lint:
	clang-format --dry-run --Werror $(LIBRARY_SOURCES) $(UNIT_SOURCES) cmd/*.c */*.h

install: all
	install -D -m 0755 bin/ferryd $(DESTDIR)/usr/local/sbin/ferryd
	install -D -m 0755 bin/ferry $(DESTDIR)/usr/local/bin/ferry

clean:
	rm -rf build bin

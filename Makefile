# ferry: one non-recursive Makefile. `make` builds bin/ferryd and bin/ferry; `make check` builds
# the same sources with AddressSanitizer and UndefinedBehaviorSanitizer into build/check and runs
# every test against those binaries.

CC ?= cc
PACKAGES := libcurl libmicrohttpd jansson libzstd sqlite3 libxxhash gnutls inih libvirt libxml-2.0 \
	libsystemd libnbd
# The version lives in one place, the Debian changelog's first line; both programs print it.
VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' packaging/debian/changelog)
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla
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
# The console's files (web/console/) become C source at build time (web/embed-console.sh).
LIBRARY_OBJECTS := $(LIBRARY_SOURCES:%.c=$(BUILD)/%.o) $(BUILD)/web/console_assets.o
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

$(BUILD)/web/console_assets.c: web/embed-console.sh $(wildcard web/console/*)
	@mkdir -p $(dir $@)
	$(Q)sh web/embed-console.sh web/console > $@.tmp && mv $@.tmp $@

$(BUILD)/web/console_assets.o: $(BUILD)/web/console_assets.c
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_ALL) -Wno-missing-variable-declarations -c -o $@ $<

$(BUILD)/libferry.a: $(LIBRARY_OBJECTS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/bin/ferryd: $(BUILD)/cmd/ferryd.o $(BUILD)/cmd/ferryd_check.o $(BUILD)/libferry.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/bin/ferry: $(BUILD)/cmd/ferry.o $(BUILD)/cmd/ferry_access.o $(BUILD)/cmd/ferry_config.o \
		$(BUILD)/cmd/ferry_operate.o $(BUILD)/cmd/ferry_cutover.o $(BUILD)/cmd/ferry_options.o \
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
	$(MAKE) check-fuzz

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
	FERRY_DEMO_KEEP=$(KEEP) bash tests/demo.sh

.PHONY: demo-stop
demo-stop:
	bash tests/demo.sh stop

# The thrash soak (not part of check, whose 33-soak.t runs a 3-minute version): SOAK_MINUTES
# (default 20) of kill -9, cut and stalled links and a stopped replica OSD under a write load,
# then every point compared with the source; its last line is a JSON report.
.PHONY: soak
soak: deps
	$(MAKE) all
	SOAK_MINUTES=$(or $(SOAK_MINUTES),20) FERRY_BIN=$(CURDIR)/$(BUILD)/bin bash tests/soak/soak.sh

# clang-format, then the project's own rules (tests/lint-idiom.py: the error idiom, one number
# parser, no file over 1,000 lines and no function over 150), each saying what to use instead.
lint:
	clang-format --dry-run --Werror $(LIBRARY_SOURCES) $(UNIT_SOURCES) cmd/*.c */*.h
	python3 tests/lint-idiom.py --self-test tests/data/lint
	python3 tests/lint-idiom.py $(LIBRARY_SOURCES) $(UNIT_SOURCES) cmd/*.c

# ---- fuzzing ----
# libFuzzer targets (tests/fuzz/fuzz_NAME.c), built with clang into $(FUZZ_BUILD): the library's
# sources with -fsanitize=fuzzer-no-link,address,undefined, each target linked with
# -fsanitize=fuzzer,address,undefined. `make fuzz` runs each for FUZZ_SECONDS (default 60) from
# its seeds in tests/fuzz/corpus/NAME (read only: what a run finds goes to $(FUZZ_BUILD)/corpus,
# a crash's input to $(FUZZ_BUILD)/artifacts); `make check-fuzz` is a 10 s run of each, part of
# `make check`. A crash's input becomes a seed of its target, so every later run replays it.
.PHONY: fuzz check-fuzz fuzz-binaries
FUZZ_CC ?= clang
FUZZ_BUILD ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_common.c,\
	$(wildcard tests/fuzz/fuzz_*.c)))
# clang warns of vsnprintf in helpers that gcc (the usual compiler) reads as format functions.
FUZZ_CFLAGS := $(BASE_CFLAGS) -Wno-format-nonliteral -O1 -g -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined \
	-fsanitize=fuzzer-no-link,address,undefined
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
FUZZ_OBJECTS := $(LIBRARY_SOURCES:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/web/console_assets.o \
	$(FUZZ_BUILD)/cmd/ferry_config.o $(FUZZ_BUILD)/tests/fuzz/fuzz_common.o
FUZZ_BINARIES := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
# Kept, so that a second run links nothing again.
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o)

$(FUZZ_BUILD)/%.o: %.c $(wildcard */*.h) tests/fuzz/fuzz.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/web/console_assets.c: web/embed-console.sh $(wildcard web/console/*)
	@mkdir -p $(dir $@)
	$(Q)sh web/embed-console.sh web/console > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/web/console_assets.o: $(FUZZ_BUILD)/web/console_assets.c
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(FUZZ_BUILD)/libferry-fuzz.a: $(FUZZ_OBJECTS)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libferry-fuzz.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(LIBS)

fuzz-binaries: $(FUZZ_BINARIES)

# Each target to its end, or to its first crash (then the next ones still run; exit 1).
fuzz: fuzz-binaries
	@failed=0; for name in $(FUZZ_TARGETS); do \
		echo "== fuzz_$$name, $(FUZZ_SECONDS) s"; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$name $(FUZZ_BUILD)/artifacts; \
		$(FUZZ_BUILD)/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/artifacts/$$name- \
			$(FUZZ_BUILD)/corpus/$$name tests/fuzz/corpus/$$name \
			> $(FUZZ_BUILD)/fuzz_$$name.log 2>&1 || \
			{ failed=1; tail -n 60 $(FUZZ_BUILD)/fuzz_$$name.log; \
			  echo "fuzz_$$name FAILED: $(FUZZ_BUILD)/fuzz_$$name.log, input in" \
			       "$(FUZZ_BUILD)/artifacts/"; continue; }; \
		grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done)' \
			$(FUZZ_BUILD)/fuzz_$$name.log; \
	done; exit $$failed

check-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=10

# ---- installing and packaging ----
# `make install [PREFIX=/usr/local] [DESTDIR=] [BUILD=]` installs the programs, man pages
# (made with scdoc from packaging/man/), bash completion, and the sample configurations into
# /etc/ferry unless a file of that name is there already. `make uninstall` with the same
# variables removes it all again, except a configuration that differs from its sample.
# `make deb` builds the Debian package (packaging/debian/) from the working tree into build/deb/.
.PHONY: uninstall deb man
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
BASH_COMPLETION_DIR = $(PREFIX)/share/bash-completion/completions
DATADIR = $(PREFIX)/share/ferry
# Whatever the PREFIX: ferryd.service and the CLI look for them there.
CONFIG_DIR = /etc/ferry
CONFIG_SAMPLES := packaging/config/ferryd.conf packaging/config/ferry.conf
# Prometheus alert rules, when packaging/prometheus/ holds them.
ALERT_RULES := $(wildcard packaging/prometheus/ferry-alerts.yml)
MAN_PAGES := $(patsubst packaging/man/%.scd,build/man/%,$(wildcard packaging/man/*.scd))
# build/man/ferryd.conf.5 -> $(MANDIR)/man5/ferryd.conf.5
man_path = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))

man: $(MAN_PAGES)

build/man/%: packaging/man/%.scd
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SCDOC   $@")
	$(Q)sed 's/@VERSION@/$(VERSION)/g' $< | scdoc > $@.tmp && mv $@.tmp $@

# The programs of $(BUILD) (default build/release), so that installing one flavour does not
# change bin/.
install: $(BUILD)/bin/ferryd $(BUILD)/bin/ferry man
	install -D -m 0755 $(BUILD)/bin/ferryd $(DESTDIR)$(SBINDIR)/ferryd
	install -D -m 0755 $(BUILD)/bin/ferry $(DESTDIR)$(BINDIR)/ferry
	$(foreach page,$(MAN_PAGES),install -D -m 0644 $(page) $(call man_path,$(page)) && ) true
	install -D -m 0644 packaging/bash-completion/ferry $(DESTDIR)$(BASH_COMPLETION_DIR)/ferry
	$(if $(ALERT_RULES),install -D -m 0644 $(ALERT_RULES) $(DESTDIR)$(DATADIR)/ferry-alerts.yml)
	@for sample in $(CONFIG_SAMPLES); do \
		target="$(DESTDIR)$(CONFIG_DIR)/$${sample##*/}"; \
		if [ -e "$$target" ]; then echo "  KEEP    $$target (exists; the sample is $$sample)"; \
		else echo "install -D -m 0644 $$sample $$target"; \
			install -D -m 0644 "$$sample" "$$target" || exit 1; fi; \
	done

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ferryd $(DESTDIR)$(BINDIR)/ferry
	rm -f $(foreach page,$(MAN_PAGES),$(call man_path,$(page)))
	rm -f $(DESTDIR)$(BASH_COMPLETION_DIR)/ferry $(DESTDIR)$(DATADIR)/ferry-alerts.yml
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true
	@for sample in $(CONFIG_SAMPLES); do \
		target="$(DESTDIR)$(CONFIG_DIR)/$${sample##*/}"; \
		if cmp -s "$$sample" "$$target"; then echo "rm -f $$target"; rm -f "$$target"; \
		elif [ -e "$$target" ]; then echo "  KEEP    $$target (edited)"; fi; \
	done
	rmdir $(DESTDIR)$(CONFIG_DIR) 2>/dev/null || true

# The package is built in a copy of the working tree (without build/, bin/ and .git) whose
# debian/ is packaging/debian; the .deb, .buildinfo and .changes land in build/deb/, unsigned.
DEB_DIR := build/deb
deb:
	@test -n "$(VERSION)" || { echo "no version in packaging/debian/changelog" >&2; exit 1; }
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/ferry-$(VERSION)
	tar -cf - --exclude=./build --exclude=./bin --exclude=./.git . | \
		tar -xf - -C $(DEB_DIR)/ferry-$(VERSION)
	cp -R packaging/debian $(DEB_DIR)/ferry-$(VERSION)/debian
	cd $(DEB_DIR)/ferry-$(VERSION) && dpkg-buildpackage -us -uc -b -jauto
	@ls -1 $(DEB_DIR)/*.deb $(DEB_DIR)/*.buildinfo $(DEB_DIR)/*.changes

clean:
	rm -rf build bin

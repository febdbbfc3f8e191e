# cardgate: plain GNU make, pkg-config for every library.
#
#   make            build build/cardgated, build/cardgatectl, build/cardgate-sim
#   make SAN=1 ...  the same with AddressSanitizer + UBSan (own object dir)
#   make check      dependencies, build, every test (unit + integration)
#   make run        dependencies, build, throwaway PostgreSQL, demo, daemon in the foreground
#   make bench      benchmarks that print tables (never pass/fail on time)
#   make fuzz       libFuzzer targets for a bounded time (FUZZ_SECONDS)
#   make install    PREFIX / DESTDIR honoured
#   make format     clang-format every C source in place
#
# Each library directory is picked up by wildcard, so adding a .c file to a
# module needs no Makefile change: iso8583/ crypto/ conf/ common/ daemon/
# tools/ctl/ tools/sim/, tests/unit/test_*.c, tests/integration/test_*.c.

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share/cardgate
SYSCONFDIR ?= /etc
UNITDIR  ?= $(PREFIX)/lib/systemd/system
DESTDIR  ?=

SAN      ?= 0
SYSTEMD  ?= 0
FUZZ_SECONDS ?= 60
V        ?= 0

ifeq ($(V),0)
Q := @
else
Q :=
endif

PKGS := libevent libevent_openssl libpq libssl libcrypto msgpack
ifeq ($(SYSTEMD),1)
PKGS += libsystemd
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka 2>/dev/null)

CFLAGS   ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS += -std=c11 -D_GNU_SOURCE -I. $(PKG_CFLAGS)
ifeq ($(SYSTEMD),1)
CPPFLAGS += -DHAVE_LIBSYSTEMD=1
endif

ifeq ($(SAN),1)
FLAVOR   := san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
FLAVOR   := rel
SANFLAGS :=
endif

B  := build
O  := $(B)/obj-$(FLAVOR)
ALL_CFLAGS := $(CPPFLAGS) $(WARNINGS) $(CFLAGS) $(SANFLAGS)
LDLIBS_ALL := $(PKG_LIBS) -lm

# A stamp that changes whenever the flags do, so a SAN=1 build after a plain
# one relinks the binaries instead of mixing flavours.
FLAGS_ID := $(CC) $(ALL_CFLAGS) $(LDFLAGS)
$(shell mkdir -p $(B) && (printf '%s\n' '$(FLAGS_ID)' | cmp -s - $(B)/.flags || printf '%s\n' '$(FLAGS_ID)' > $(B)/.flags))

COMMON_SRC := $(wildcard common/*.c)
CONF_SRC   := $(wildcard conf/*.c)
ISO_SRC    := $(wildcard iso8583/*.c)
# conf/dialects/*.conf embedded as C so the built-in dialects need no files
DIALECT_CONF := $(sort $(wildcard conf/dialects/*.conf))
ISO_GEN    := $(B)/gen/dialects_builtin.c
CRYPTO_SRC := $(wildcard crypto/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CTL_SRC    := $(filter-out tools/ctl/main.c,$(wildcard tools/ctl/*.c))
SIM_SRC    := $(filter-out tools/sim/main.c,$(wildcard tools/sim/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
BENCH_SRC  := $(wildcard bench/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

objs = $(patsubst %.c,$(O)/%.o,$(1))

LIB_COMMON := $(O)/libcommon.a
LIB_CONF   := $(O)/libconf.a
LIB_ISO    := $(O)/libiso8583.a
LIB_CRYPTO := $(O)/libcgcrypto.a
LIB_DAEMON := $(O)/libdaemon.a
LIB_CTL    := $(O)/libctl.a
LIB_SIM    := $(O)/libsim.a
LIB_TEST   := $(O)/libtest.a

# Link order: most dependent first.
CORE_LIBS := $(LIB_DAEMON) $(LIB_ISO) $(LIB_CRYPTO) $(LIB_CONF) $(LIB_COMMON)

PROGS := $(B)/cardgated $(B)/cardgatectl $(B)/cardgate-sim
UNIT_BINS  := $(patsubst tests/unit/%.c,$(O)/t/%,$(UNIT_SRC))
INTEG_BINS := $(patsubst tests/integration/%.c,$(O)/t/%,$(INTEG_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(B)/bench-%,$(BENCH_SRC))

.PHONY: all check unit integration run bench fuzz install format clean deps tests distclean
.DEFAULT_GOAL := all
.SECONDARY:

all: $(PROGS)

$(O)/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -c -o $@ $<

define mklib
$(1): $(call objs,$(2))
	@mkdir -p $$(dir $$@)
	@echo "  AR      $$@"
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef

$(eval $(call mklib,$(LIB_COMMON),$(COMMON_SRC)))
$(eval $(call mklib,$(LIB_CONF),$(CONF_SRC)))
$(eval $(call mklib,$(LIB_ISO),$(ISO_SRC) $(ISO_GEN)))

$(ISO_GEN): $(DIALECT_CONF) scripts/embed-dialects
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q)scripts/embed-dialects $(DIALECT_CONF) > $@.tmp && mv $@.tmp $@
$(eval $(call mklib,$(LIB_CRYPTO),$(CRYPTO_SRC)))
$(eval $(call mklib,$(LIB_DAEMON),$(DAEMON_SRC)))
$(eval $(call mklib,$(LIB_CTL),$(CTL_SRC)))
$(eval $(call mklib,$(LIB_SIM),$(SIM_SRC)))
$(eval $(call mklib,$(LIB_TEST),$(TESTLIB_SRC)))

LINK = @echo "  LD      $@"; mkdir -p $(dir $@); $(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@

$(B)/cardgated: $(O)/daemon/main.o $(CORE_LIBS) $(B)/.flags
	$(LINK) $(O)/daemon/main.o $(CORE_LIBS) $(LDLIBS_ALL)

$(B)/cardgatectl: $(O)/tools/ctl/main.o $(LIB_CTL) $(CORE_LIBS) $(B)/.flags
	$(LINK) $(O)/tools/ctl/main.o $(LIB_CTL) $(CORE_LIBS) $(LDLIBS_ALL)

$(B)/cardgate-sim: $(O)/tools/sim/main.o $(LIB_SIM) $(CORE_LIBS) $(B)/.flags
	$(LINK) $(O)/tools/sim/main.o $(LIB_SIM) $(CORE_LIBS) $(LDLIBS_ALL)

TEST_LINK_LIBS := $(LIB_TEST) $(LIB_CTL) $(LIB_SIM) $(CORE_LIBS)

$(O)/t/%: $(O)/tests/unit/%.o $(TEST_LINK_LIBS) $(B)/.flags
	$(LINK) $< $(TEST_LINK_LIBS) $(CMOCKA_LIBS) $(LDLIBS_ALL)

$(O)/t/%: $(O)/tests/integration/%.o $(TEST_LINK_LIBS) $(B)/.flags
	$(LINK) $< $(TEST_LINK_LIBS) $(CMOCKA_LIBS) $(LDLIBS_ALL)

$(B)/bench-%: $(O)/bench/%.o $(TEST_LINK_LIBS) $(B)/.flags
	$(LINK) $< $(TEST_LINK_LIBS) $(LDLIBS_ALL)

tests: $(PROGS) $(UNIT_BINS) $(INTEG_BINS)

deps:
	$(Q)scripts/deps

# The one test command (README, CI): unit tests, then integration tests that
# start their own throwaway PostgreSQL through tests/pgtmp.
check: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)CARDGATE_BUILD=$(B) CARDGATE_TESTBIN=$(O)/t scripts/run-tests $(UNIT_BINS) $(INTEG_BINS)

unit: $(UNIT_BINS)
	$(Q)CARDGATE_BUILD=$(B) CARDGATE_TESTBIN=$(O)/t scripts/run-tests $(UNIT_BINS)

integration: $(PROGS) $(INTEG_BINS)
	$(Q)CARDGATE_BUILD=$(B) CARDGATE_TESTBIN=$(O)/t scripts/run-tests $(INTEG_BINS)

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/run

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS)
	$(Q)CARDGATE_BUILD=$(B) scripts/bench

# libFuzzer needs clang; the fuzz build has its own object dir.
FUZZ_CC     ?= clang
FUZZ_O      := $(B)/fuzz
FUZZ_FLAGS  := -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined $(PKG_CFLAGS)
FUZZ_LIBSRC := $(ISO_SRC) $(ISO_GEN) $(CRYPTO_SRC) $(CONF_SRC) $(COMMON_SRC)
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,$(FUZZ_O)/%,$(FUZZ_SRC))

$(FUZZ_O)/%: tests/fuzz/%.c $(FUZZ_LIBSRC)
	@mkdir -p $(dir $@)
	@echo "  FUZZ-LD $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIBSRC) $(PKG_LIBS)

fuzz: deps $(FUZZ_BINS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz $(FUZZ_BINS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(DATADIR)/dialects \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/cardgate \
	    $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	install -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	install -m 0644 sql/*.sql $(DESTDIR)$(DATADIR)/sql/
	if ls conf/dialects/*.conf >/dev/null 2>&1; then \
	    install -m 0644 conf/dialects/*.conf $(DESTDIR)$(DATADIR)/dialects/; fi
	install -m 0644 systemd/cardgated.service systemd/cardgated.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/cardgate.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/cardgate.conf
	install -m 0644 systemd/cardgate.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/cardgate.conf
	install -m 0640 conf/cardgated.conf.example $(DESTDIR)$(SYSCONFDIR)/cardgate/cardgated.conf.example

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)

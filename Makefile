# herald — `make run` and `make test` are the two commands a newcomer needs.
# Packages come from scripts/deps.sh (idempotent); flags from pkg-config, evaluated after it.

CC       ?= cc
PKGS     := libuv jansson libssl libcrypto zlib sqlite3 hiredis libjwt libcurl libnghttp2 liburing
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS := -Isrc -D_GNU_SOURCE
CFLAGS_COMMON = -std=c17 $(WARN) -g $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS_COMMON = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

# build/rel: optimised; build/asan: ASan + UBSan, what the tests run.
REL_CFLAGS  := -O2
ASAN_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

SRCS      := $(shell find src -name '*.c' ! -name main.c | sort)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

REL_OBJS  := $(SRCS:src/%.c=build/rel/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

.PHONY: all run test deps deps-test deps-bench unit integration clean format bench bench-full test-tsan test-valgrind soak install

all: build/herald

build/herald: $(REL_OBJS) build/rel/main.o
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_COMMON) $(REL_CFLAGS) -o $@ $^ $(LDLIBS_COMMON)

build/asan/herald: $(ASAN_OBJS) build/asan/main.o
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_COMMON) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS_COMMON)

build/rel/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) $(REL_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) $(ASAN_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/tests/%: tests/unit/%.c $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS_COMMON) \
	    $(shell pkg-config --libs cmocka 2>/dev/null)

# assets.c pulls these in with .incbin; the compiler's dependency list cannot see them.
ASSETS := clients/js/herald.js clients/js/herald.d.ts clients/demo/index.html clients/demo/call.html \
          clients/dashboard/index.html
build/rel/api/assets.o build/asan/api/assets.o: $(ASSETS)

HB_SRCS := $(wildcard bench/hb/*.c)
build/herald-bench: $(HB_SRCS) bench/hb/hb.h
	@echo "  LD      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) $(REL_CFLAGS) -o $@ $(HB_SRCS) $(LDLIBS_COMMON)

build/herald-publish: bench/publish.c
	$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) $(REL_CFLAGS) -o $@ $< $(LDLIBS_COMMON)

# What one small send costs: a bare system call, write() and io_uring (docs/BENCHMARKS.md).
build/sendcost: bench/sendcost.c
	$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) $(REL_CFLAGS) -o $@ $< $(LDLIBS_COMMON)

# `make install` (PREFIX=/usr/local, SYSCONFDIR=/etc, DESTDIR for packaging): the binary, the
# systemd unit with its paths filled in, an example herald.conf (kept if one exists), the docs.
PREFIX  ?= /usr/local
BINDIR  := $(PREFIX)/bin
DOCDIR  := $(PREFIX)/share/doc/herald
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL_BIN ?= build/herald
install: deps
	@$(MAKE) --no-print-directory $(INSTALL_BIN)
	install -D -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/herald
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/herald
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    contrib/herald.service.in \
	    > $(DESTDIR)$(UNITDIR)/herald.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/herald.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/herald/herald.conf ] || \
	    install -m 0644 contrib/herald.conf $(DESTDIR)$(SYSCONFDIR)/herald/herald.conf
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test
	@cd tests/integration && { [ -d node_modules ] && [ node_modules/.stamp -nt package-lock.json ] || \
	    { npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp; }; }

# Recursive make so pkg-config runs after the packages are there.
run: deps
	@$(MAKE) --no-print-directory build/herald
	@printf '\nherald on http://127.0.0.1:8080 — try, in another terminal:\n\n'
	@printf '  curl -N http://127.0.0.1:8080/v1/topics/news/events\n'
	@printf '  curl -d "hello" "http://127.0.0.1:8080/v1/topics/news?event=greeting"\n'
	@printf '  curl -H "Content-Type: application/json" -d '"'"'{"event":"note","data":{"x":1}}'"'"' http://127.0.0.1:8080/v1/topics/news\n'
	@printf '  curl "http://127.0.0.1:8080/v1/topics/news/messages?since=0"\n'
	@printf '  curl "http://127.0.0.1:8080/v1/topics/news/poll?timeout=25"    # long poll\n'
	@printf '  open http://127.0.0.1:8080/demo  (WebSocket, SSE and long polling side by side)\n'
	@printf '  curl http://127.0.0.1:8080/v1/stats\n\n'
	exec ./build/herald --listen $${HERALD_LISTEN:-127.0.0.1:8080} --data-dir $${HERALD_DATA_DIR:-./data}

test: deps-test
	@$(MAKE) --no-print-directory build/asan/herald build/herald-bench $(UNIT_BINS)
	@scripts/test.sh

# ThreadSanitizer: the integration suite against a TSan build (tests use 1-2 workers, cluster
# mode adds the bus thread). A race report makes herald exit 66, which fails its test.
TSAN_OBJS := $(SRCS:src/%.c=build/tsan/%.o)
build/tsan/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS_COMMON) -O1 -fsanitize=thread -MMD -MP -c -o $@ $<

build/tsan/herald: $(TSAN_OBJS) build/tsan/main.o
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_COMMON) -O1 -fsanitize=thread -o $@ $^ $(LDLIBS_COMMON)

test-tsan: deps-test
	@$(MAKE) --no-print-directory build/tsan/herald
	@TSAN_OPTIONS="halt_on_error=0 exitcode=66 $${TSAN_OPTIONS:-}" \
	    HERALD_BIN=$$PWD/build/tsan/herald scripts/test.sh integration

# Valgrind (memcheck, full leak check) over the whole integration suite against the release
# build: a leak or memory error makes herald exit 77, which fails its test. About 5 minutes.
test-valgrind: deps-test
	@$(MAKE) --no-print-directory build/herald
	@HERALD_BIN=$$PWD/scripts/valgrind-herald.sh scripts/test.sh integration

# The soak run: 30 minutes of mixed load on two cluster nodes (tests/integration/soak.mjs);
# SOAK_SECONDS shortens it. Writes docs/bench/soak.json and soak-rss.svg.
soak: deps-test
	@$(MAKE) --no-print-directory build/herald
	@cd tests/integration && HERALD_BIN=$$PWD/../../build/herald node soak.mjs

unit: deps-test
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@scripts/test.sh unit

integration: deps-test
	@$(MAKE) --no-print-directory build/asan/herald build/herald-bench
	@scripts/test.sh integration

# herald side by side with nchan, Socket.IO and ws (bench/suite.sh; results in docs/bench/).
deps-bench: deps
	@scripts/deps.sh bench
	@cd bench/peers && { [ -d node_modules ] && [ node_modules/.stamp -nt package-lock.json ] || \
	    { npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.stamp; }; }

bench: deps-bench
	@$(MAKE) --no-print-directory build/herald build/herald-bench
	@bench/suite.sh quick

bench-full: deps-bench
	@$(MAKE) --no-print-directory build/herald build/herald-bench
	@bench/suite.sh full

format:
	clang-format -i $$(find src tests/unit bench -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# libFuzzer targets (fuzz/<name>/fuzz.c) with clang; corpora in fuzz/<name>/corpus.
FUZZ_TARGETS := $(notdir $(wildcard fuzz/*))
FUZZ_SECONDS ?= 60
FUZZ_SRCS := src/core/utf8.c src/core/base64.c src/transport/ws_frame.c src/transport/ws_deflate.c \
             src/api/publish_body.c src/transport/sse_encode.c src/core/id.c \
             src/http/request.c src/http/query.c

build/fuzz/%: fuzz/%/fuzz.c $(FUZZ_SRCS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@clang $(CPPFLAGS) -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_SRCS) \
	    $(FUZZ_EXTRA) \
	    $(shell pkg-config --libs libcrypto zlib jansson)

# Token and claim parsing needs libjwt.
build/fuzz/jwt_token: FUZZ_EXTRA = src/auth/jwt.c src/auth/jwt_key.c src/auth/pattern.c -ljwt
build/fuzz/jwt_token: src/auth/jwt.c src/auth/jwt_key.c src/auth/pattern.c

# The cluster wire decoder needs the message type too (its own stub for the broker's part).
build/fuzz/bus_wire: FUZZ_EXTRA = src/bus/wire.c src/core/msg.c
build/fuzz/bus_wire: src/bus/wire.c src/core/msg.c

# The HTTP/2 input path: the front end on nghttp2 and libuv, its request builder and the
# exchange's calls; the socket, the handlers and the metrics are the target's stubs.
H2_FUZZ_SRCS := src/http/h2.c src/http/h2_request.c src/http/exchange.c src/core/log.c \
                src/core/buf.c src/http/router.c src/http/access.c
build/fuzz/h2_input: FUZZ_EXTRA = $(H2_FUZZ_SRCS) -lnghttp2 -luv
build/fuzz/h2_input: $(H2_FUZZ_SRCS)

.PHONY: fuzz
fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build/fuzz/%)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus-$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build/fuzz/corpus-$$t fuzz/$$t/corpus 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' ; \
	done

# bai: a C host embedding Lua 5.4 for scripting Batch AI jobs.

# ---- tunables -------------------------------------------------------------
CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CFLAGS   ?= -O2 -g
SANITIZE ?=
VERSION  := 0.1.0

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wpointer-arith -Wformat=2 -Wundef -Wno-unused-parameter
LUA_CFLAGS  = -I/usr/include/lua5.4
# Debian's static Lua and lua-cjson, in the multiarch folder of this machine.
MULTIARCH  := $(shell $(CC) -print-multiarch 2>/dev/null)
LUA_STATIC  = /usr/lib/$(or $(MULTIARCH),x86_64-linux-gnu)/liblua5.4.a
CJSON_LIB   = /usr/lib/$(or $(MULTIARCH),x86_64-linux-gnu)/liblua5.4-cjson.a
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE -DBAI_VERSION='"$(VERSION)"' $(LUA_CFLAGS) \
              $(WARN) $(CFLAGS) $(SANITIZE) -fPIC -MMD -MP

# Modules linked into the binary: light, needed at start-up or by the REPL.
CORE_SRC = $(wildcard src/*.c)

# Modules loaded on first `require`, each a shared object with its heavy
# library: linking libcurl or libmicrohttpd into the binary costs ~8 ms of
# dynamic loading on every start, which `bai -e ''` must not pay.
# A module src/mod/NAME.c becomes $(BUILD)/lib/bai/NAME.so; NAME_LIBS are its libraries.
DYN_SRC   = $(wildcard src/mod/*.c)
DYN_NAMES = $(notdir $(basename $(DYN_SRC)))
DYN_SO    = $(DYN_NAMES:%=$(BUILD)/lib/bai/%.so)
_http_LIBS   = -lcurl
_httpd_LIBS  = -lmicrohttpd -lgnutls
_sqlite_LIBS = -lsqlite3

LUA_FILES = $(shell find lua -name '*.lua' | LC_ALL=C sort)
# Rebuild the embedded table when a Lua file is added or removed, not only edited.
LUA_LIST  = $(BUILD)/obj/lua_files.list
$(shell mkdir -p $(BUILD)/obj && (echo '$(LUA_FILES)' | cmp -s - $(LUA_LIST) || echo '$(LUA_FILES)' > $(LUA_LIST)))
BIN       = $(BUILD)/bin/bai
CORE_OBJ  = $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/embedded_lua.o

.PHONY: all test test-asan asan bench demo install install-files uninstall clean

all: $(BIN) $(DYN_SO)

$(BIN): $(CORE_OBJ) | $(BUILD)/bin
	$(CC) $(CFLAGS) $(SANITIZE) -o $@ $(CORE_OBJ) -Wl,-E $(CJSON_LIB) $(LUA_STATIC) \
	  -lreadline -lm -ldl $(LDFLAGS)

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/lib/bai/%.so: src/mod/%.c | $(BUILD)/lib/bai $(BUILD)/obj/mod
	$(CC) $(ALL_CFLAGS) -Isrc -shared -o $@ $< -MF $(BUILD)/obj/mod/$*.d $($*_LIBS) $(LDFLAGS)

# Every file under lua/ is compiled to bytecode and linked into the binary.
$(BUILD)/obj/embedded_lua.c: $(LUA_FILES) $(LUA_LIST) $(BUILD)/embed_lua | $(BUILD)/obj
	$(BUILD)/embed_lua $(LUA_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/embedded_lua.o: $(BUILD)/obj/embedded_lua.c
	$(CC) $(ALL_CFLAGS) -Isrc -c -o $@ $<

# Links the same Lua library as the binary, so the bytecode it writes is the binary's format.
$(BUILD)/embed_lua: src/build/embed_lua.c | $(BUILD)
	$(CC) -std=c11 -O2 $(WARN) $(LUA_CFLAGS) -o $@ $< $(LUA_STATIC) -lm

$(BUILD) $(BUILD)/bin $(BUILD)/obj $(BUILD)/obj/mod $(BUILD)/lib/bai:
	mkdir -p $@

# The suite runs inside the binary under test (busted is a Lua script).
TEST_ARGS ?=
test: all
	BAI=$(abspath $(BIN)) $(BIN) spec/run.lua $(TEST_ARGS)

# Same suite, same specs, with AddressSanitizer + UndefinedBehaviorSanitizer.
ASAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g" SANITIZE="$(ASAN_FLAGS)" all

# use_tls=0: Debian 12's LeakSanitizer (gcc 12, glibc 2.36) misreads the
# dynamic TLS block of a dlopen'ed GnuTLS (through _httpd.so) and crashes at exit
# ("Tracer caught signal 11"; valgrind finds nothing there).  Not scanning TLS
# can only add leak reports (fewer roots), never hide one.
test-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath spec/support/lsan.supp):print_suppressions=0:use_tls=0 \
	BAI=$(abspath build/asan/bin/bai) build/asan/bin/bai spec/run.lua $(TEST_ARGS)

bench: all
	sh scripts/bench/run-all.sh

install: all install-files

# Copies what is already built, rebuilding nothing (the install spec uses it on
# whichever build, plain or sanitized, is running the suite).
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/bai
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/bai
	for so in $(DYN_SO); do install -m 644 $$so $(DESTDIR)$(PREFIX)/lib/bai/; done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/bai
	rm -rf $(DESTDIR)$(PREFIX)/lib/bai

clean:
	rm -rf build

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/mod/*.d)

# The README's main job: an example sweep on the local endpoint (started in
# the background when none runs), then its results table and best trial.
# Its manifest goes under build/sweeps: `BAI_SWEEP_DIR=build/sweeps bai sweep report grid`.
demo: all
	BAI_SWEEP_DIR=$(abspath $(BUILD))/sweeps $(BIN) sweep run scripts/examples/grid.lua

# Fuzz target for the typed schema (libFuzzer + ASan/UBSan, clang): arbitrary
# JSON and arbitrary Lua tables through decode/check/validate/constructors, for
# FUZZ_TIME seconds, starting from the schema's fixtures.
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_BIN   = build/fuzz/schema_fuzz
FUZZ_SRC   = src/fuzz/schema_fuzz.c src/mod/_schema.c $(filter-out src/main.c,$(CORE_SRC))
.PHONY: fuzz
$(FUZZ_BIN): $(FUZZ_SRC) src/fuzz/schema_fuzz.lua $(BUILD)/obj/embedded_lua.c
	mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -DBAI_VERSION='"$(VERSION)"' $(LUA_CFLAGS) -Isrc -g -O1 \
	  -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	  -DFUZZ_DRIVER='"$(abspath src/fuzz/schema_fuzz.lua)"' -o $@ $(FUZZ_SRC) $(BUILD)/obj/embedded_lua.c \
	  -Wl,-E $(CJSON_LIB) $(LUA_STATIC) -lreadline -lm -ldl
# The mutation dictionary: every field name and enum value, quoted, from the schema itself.
fuzz: $(FUZZ_BIN) $(BIN)
	rm -rf build/fuzz/corpus && mkdir -p build/fuzz/corpus && cp spec/fixtures/schema/*.json build/fuzz/corpus/
	$(BIN) src/fuzz/schema_dict.lua > build/fuzz/schema.dict
	ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=64 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	  -dict=build/fuzz/schema.dict build/fuzz/corpus

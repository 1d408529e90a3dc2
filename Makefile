# autodidact build. `make` builds build/autodidact and build/libautodidact.a.
# Sources are discovered by wildcard so that a new module needs no Makefile edit:
# every src/<module>/*.c except src/cli goes into the library; every tests/test_*.c
# is one test program linked against the library and tests/harness.c.

CC       ?= gcc
BUILD    ?= build
OPT      ?= -O3
# x86-64-v3 (AVX2 + FMA) is the baseline; AVX-512 kernels are compiled with
# target attributes and chosen at run time, so the binary runs on AVX2-only CPUs.
ARCH     ?= -mavx2 -mfma -mf16c
CFLAGS   ?= $(OPT) $(ARCH) -g
# Flags the build needs whatever CFLAGS a caller passes (make CFLAGS=... keeps them).
AD_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp \
            -Isrc -I/usr/include/x86_64-linux-gnu/openblas-pthread $(MPI_CFLAGS)
LDLIBS   += $(MPI_LIBS) -lopenblas -lcjson -linih -lsqlite3 -lm -lpthread
LDFLAGS  += -fopenmp
# Open MPI's headers and libraries (src/dist only includes mpi.h); gcc stays the
# compiler. The same binary runs alone (MPI untouched) or under mpirun.
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null || pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null || pkg-config --libs ompi-c 2>/dev/null)

LIB_SRC  := $(sort $(wildcard src/util/*.c src/dist/*.c src/model/*.c src/tasks/*.c src/loop/*.c src/store/*.c src/report/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/bench_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/libautodidact.a
BIN      := $(BUILD)/autodidact

.PHONY: all deps test test-asan bench demo flagship clean format lint tests docs fuzz fuzzers \
        fuzz-smoke
# deps runs first and alone: under make -j the compiler must not race apt-get
# for the headers it installs.
all: deps
	@$(MAKE) --no-print-directory $(BIN) $(LIB)

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AD_CFLAGS) -MMD -MP -c $< -o $@

# clang (make fuzz) refuses the AVX-512 files' helpers that pass __m512 by
# value unless AVX-512 is enabled for the whole file. Every function in these
# files runs only after the run-time CPU check, so that is safe there.
AVX512_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/model/*avx512*.c))
$(AVX512_OBJ): AD_CFLAGS += $(if $(findstring clang,$(CC)),-mavx512f -mavx512dq -mavx512bw -mavx512vl)
$(BUILD)/src/model/kernels_gemm_bf16_avx512.o: AD_CFLAGS += $(if $(findstring clang,$(CC)),-mavx512bf16)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^ && echo "ar $@"

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/tests/harness.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AD_CFLAGS) -Itests $< $(BUILD)/tests/harness.o $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AD_CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

tests: $(TEST_BIN) $(BIN)

# Runs every test program; prints "N passed, N failed" and fails if any test failed.
test: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) tests/run_all.sh

# The same tests under AddressSanitizer and UBSan, in a separate build folder.
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1" \
	  CFLAGS="-O1 $(ARCH) -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fopenmp -fsanitize=address,undefined" tests
	@BUILD=build-asan AD_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1 tests/run_all.sh

# libFuzzer harnesses (fuzz/README.md), built with clang into build-fuzz/ with
# the library compiled again with coverage and ASan + UBSan. Plain `make` and
# `make test` need no clang.
FUZZ_BUILD ?= build-fuzz
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRC  := $(sort $(filter-out fuzz/fuzz_common.c,$(wildcard fuzz/fuzz_*.c)))
FUZZ_BIN  := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
# Seconds each harness runs in fuzz-smoke (CI); fuzz/run.sh takes any.
FUZZ_TIME ?= 5

fuzz:
	@scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang \
	  CFLAGS="-O1 $(ARCH) -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	  LDFLAGS="-fopenmp -fsanitize=fuzzer $(FUZZ_SAN)" fuzzers

fuzzers: $(FUZZ_BIN)
.SECONDARY: $(BUILD)/fuzz/fuzz_common.o

$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/fuzz/fuzz_common.o $(LIB)
	$(CC) $(CFLAGS) $(AD_CFLAGS) $< $(BUILD)/fuzz/fuzz_common.o $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

# Every harness for FUZZ_TIME seconds from its committed corpus; fails on any
# crash, leak, sanitizer report or timeout.
fuzz-smoke: fuzz
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# Regenerates the keys' table of docs/config.md from src/loop/run_config.c.
docs: $(LIB)
	@mkdir -p $(BUILD)/scripts
	$(CC) $(CFLAGS) $(AD_CFLAGS) scripts/config_table.c $(LIB) $(LDFLAGS) $(LDLIBS) -o $(BUILD)/scripts/config_table
	@scripts/config_table.sh $(BUILD)/scripts/config_table

bench: all $(BENCH_BIN)
	@bench/run_all.sh

demo: all
	@scripts/demo.sh

flagship: all
	@scripts/flagship.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	@scripts/deps.sh --lint
	cppcheck --quiet --enable=warning,performance,portability --std=c11 --error-exitcode=1 \
	  --suppress=missingIncludeSystem -Isrc src tests fuzz

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

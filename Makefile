# autogan.h - build the programs, the tests and the benchmark into build/.
#   make            every program (build/train, build/run_tests, ...)
#   make test       compile checks (C99, C++, OpenMP on/off) and the test suite
#   make sanitize   the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      the benchmark workloads (not timed tests; see bench/)
#   make fuzz       libFuzzer, one target per file reader (needs clang), FUZZ_SECONDS each
#   make neon-test  the NEON kernels under qemu-aarch64 (needs gcc-aarch64-linux-gnu, qemu-user)
CC      ?= cc
CXX     ?= c++
OPT     ?= -O3
OMP     ?= -fopenmp
WARN     = -std=c99 -Wall -Wextra -pedantic
CFLAGS  ?=
LDLIBS   = -lm
BUILD    = build
# the repository's absolute path, compiled in: the programs find weights/ and examples/data/
# from any working directory (ag_find_resource; also next to the executable without it)
PROJECT  = -DAG_PROJECT_DIR='"$(CURDIR)"'

PROGRAMS = $(BUILD)/train $(BUILD)/score $(BUILD)/sample $(BUILD)/bench $(BUILD)/classifier $(BUILD)/search $(BUILD)/dataset
TEST_SRC = tests/run_tests.c tests/test.h tests/test_kernels.c tests/test_ops.c tests/test_models.c tests/test_inception.c tests/inception_weights.h tests/test_readers.c tests/test_sample.c tests/test_data.c tests/test_hardening.c tests/test_classifier.c tests/test_search.c tests/test_train.c tests/test_files.c tests/test_api.c

.PHONY: all test sanitize compile-checks bench fuzz neon-test clean demo
all: $(PROGRAMS) $(BUILD)/run_tests

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/%: examples/%.c examples/cli.h autogan.h | $(BUILD)
	$(CC) $(OPT) $(OMP) $(WARN) $(PROJECT) $(CFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/bench: bench/bench.c examples/cli.h autogan.h | $(BUILD)
	$(CC) $(OPT) $(OMP) $(WARN) $(PROJECT) $(CFLAGS) -o $@ $< $(LDLIBS)

# the standard set at 2 threads; bench/torch_ref.py prints the same lines for PyTorch
bench: $(BUILD)/bench
	OMP_NUM_THREADS=2 ./$(BUILD)/bench all --threads 2

$(BUILD)/run_tests: $(TEST_SRC) autogan.h | $(BUILD)
	$(CC) -O2 $(OMP) $(WARN) $(PROJECT) $(CFLAGS) -o $@ tests/run_tests.c $(LDLIBS)

# the search on the embedded Fashion-MNIST (its shipped test split) with the shipped classifier
# as the reward, all three stages (8x8 -> 16x16 -> 32x32), then a short training of the best
# architecture found: archs.txt's first line (a complete build/train command) with a budget
# appended. Passive OpenMP waiting: on a shared machine spinning threads stall.
DEMO_THREADS ?= 2
DEMO_DIR = logs/demo
DEMO_TRAIN_ITERS ?= 375
demo: $(BUILD)/search $(BUILD)/train
	@test -f weights/fashion-mnist-classifier.safetensors || { echo "make demo: weights/fashion-mnist-classifier.safetensors is missing (build/classifier trains it)"; exit 1; }
	rm -rf $(DEMO_DIR)
	OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$(DEMO_THREADS) ./$(BUILD)/search --preset demo --exp_name demo --threads $(DEMO_THREADS)
	@line=$$(grep -m1 '^build/train --arch' $(DEMO_DIR)/archs.txt | sed 's/ *#.*//'); \
	test -n "$$line" || { echo "make demo: no build/train line in $(DEMO_DIR)/archs.txt"; exit 1; }; \
	echo "make demo: training the best architecture found briefly, scored by the classifier: archs.txt's first line"; \
	echo "  $$line"; \
	echo "  with --n_critic 5 --max_iter $(DEMO_TRAIN_ITERS) --fid_stat weights/fashion-mnist-train-stats.npz --num_eval_imgs 1000 --exp_name best --log_dir $(DEMO_DIR)"; \
	OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$(DEMO_THREADS) ./$(BUILD)/$${line#build/} --gen_bs 32 --dis_bs 32 --n_critic 5 \
	  --max_iter $(DEMO_TRAIN_ITERS) --print_freq 50 --fid_stat weights/fashion-mnist-train-stats.npz \
	  --num_eval_imgs 1000 --threads $(DEMO_THREADS) --exp_name best --log_dir $(DEMO_DIR)
	@echo "make demo: outputs in $(DEMO_DIR)/: archs.txt (the architectures found), controller.png (reward and entropy),"
	@echo "           samples/ (the best architecture of each iteration), search.csv, controller.csv, Model/checkpoint.safetensors,"
	@echo "           best/ (the best architecture after its short training: Samples/ grids, eval.csv, Model/)"

# the header alone, warning-free as C99 with and without OpenMP, static, and as C++
# (-Wredundant-decls: no prototype declared twice)
compile-checks: | $(BUILD)
	@printf '#define AUTOGAN_IMPLEMENTATION\n#include "../autogan.h"\nint main(void){ ag_error e; ag_ctx *c = ag_ctx_create(1, &e); ag_ctx_free(c); return 0; }\n' > $(BUILD)/compile_check.c
	@cp $(BUILD)/compile_check.c $(BUILD)/compile_check.cpp
	$(CC) $(WARN) -Wredundant-decls -Werror -c $(BUILD)/compile_check.c -o $(BUILD)/cc_plain.o
	$(CC) $(WARN) -Wredundant-decls -Werror -fopenmp -c $(BUILD)/compile_check.c -o $(BUILD)/cc_omp.o
	$(CC) $(WARN) -Wredundant-decls -Werror -DAUTOGAN_STATIC -c $(BUILD)/compile_check.c -o $(BUILD)/cc_static.o
	$(CXX) -Wall -Wextra -Wredundant-decls -Werror -c $(BUILD)/compile_check.cpp -o $(BUILD)/cc_cxx.o
	@echo "compile checks: C99 plain, C99 OpenMP, static, C++ - warning-free"

test: compile-checks $(BUILD)/run_tests $(PROGRAMS)
	OMP_NUM_THREADS=2 ./$(BUILD)/run_tests

$(BUILD)/run_tests_sanitize: $(TEST_SRC) autogan.h | $(BUILD)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined $(WARN) $(PROJECT) -o $@ tests/run_tests.c $(LDLIBS)

sanitize: $(BUILD)/run_tests_sanitize $(PROGRAMS)
	ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/run_tests_sanitize

# the NEON path: cross-compiled for AArch64 and run under qemu-user (the kernel tests and
# every golden PyTorch comparison, under the scalar and the NEON kernels)
AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64
$(BUILD)/run_tests_aarch64: $(TEST_SRC) autogan.h | $(BUILD)
	$(AARCH64_CC) -O2 -static $(WARN) -o $@ tests/run_tests.c $(LDLIBS)

neon-test: $(BUILD)/run_tests_aarch64
	$(QEMU_AARCH64) ./$(BUILD)/run_tests_aarch64 sgemm kernels_dispatch golden

# libFuzzer (clang): one target per reader, each seeded from the test files and run
# FUZZ_SECONDS; inputs that once failed (tests/fuzz/regress) go into every corpus
FUZZ_SECONDS ?= 20
CLANG ?= clang
FUZZ_TARGETS = inflate zip npy npz png pth safetensors arrays tar idx
fuzz_cases_inflate = 0,1
fuzz_cases_zip = 2
fuzz_cases_npy = 3
fuzz_cases_npz = 4
fuzz_cases_png = 5,6,8
fuzz_cases_pth = 7
fuzz_cases_safetensors = 9
fuzz_cases_arrays = 10
fuzz_cases_tar = 11,13
fuzz_cases_idx = 12
fuzz_seeds_inflate = tests/data/*.deflate tests/data/*.zlib
fuzz_seeds_zip = tests/data/*.zip
fuzz_seeds_npy = tests/data/*.npy
fuzz_seeds_npz = tests/data/*.npz
fuzz_seeds_png = tests/data/*.png
fuzz_seeds_pth = tests/data/*.pth
fuzz_seeds_safetensors = tests/golden/data/op_*.safetensors tests/data/*.safetensors
fuzz_seeds_arrays =
fuzz_seeds_tar = tests/data/datasets/*.tar tests/data/datasets/*.tar.gz
fuzz_seeds_idx = tests/data/datasets/mnist/*
$(BUILD)/fuzz_%: tests/fuzz/fuzz_readers.c autogan.h | $(BUILD)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined '-DFUZZ_CASES={$(fuzz_cases_$*)}' -o $@ $<

fuzz: $(addprefix $(BUILD)/fuzz_,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
	  dir=$(BUILD)/fuzz_corpus_$$t; rm -rf $$dir; mkdir -p $$dir; \
	  case $$t in inflate) seeds="$(fuzz_seeds_inflate)";; zip) seeds="$(fuzz_seeds_zip)";; npy) seeds="$(fuzz_seeds_npy)";; \
	    npz) seeds="$(fuzz_seeds_npz)";; png) seeds="$(fuzz_seeds_png)";; pth) seeds="$(fuzz_seeds_pth)";; \
	    safetensors) seeds="$(fuzz_seeds_safetensors)";; tar) seeds="$(fuzz_seeds_tar)";; idx) seeds="$(fuzz_seeds_idx)";; \
	    *) seeds="";; esac; \
	  i=0; for f in $$seeds; do [ -f "$$f" ] || continue; case "$$f" in *.zlib) p='\001';; *) p='\000';; esac; \
	    { printf "$$p"; cat "$$f"; } > $$dir/$$i; i=$$((i+1)); done; \
	  cp tests/fuzz/regress/* $$dir/; \
	  echo "fuzz $$t: $$i seeds, $(FUZZ_SECONDS) s"; \
	  ./$(BUILD)/fuzz_$$t -max_len=65536 -timeout=10 -rss_limit_mb=2048 -max_total_time=$(FUZZ_SECONDS) $$dir > $$dir.log 2>&1 \
	    || { tail -40 $$dir.log; echo "fuzz $$t FAILED (log: $$dir.log)"; exit 1; }; \
	  tail -1 $$dir.log; \
	done

clean:
	rm -rf $(BUILD)

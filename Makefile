# Kiln: `make run` installs what is missing, builds and starts Kiln; `make test` installs,
# builds and runs every test.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:9001
DATA_DIR ?= .kiln
REGION ?= us-east-1

.PHONY: deps configure build run test unit e2e bench lint clean

deps:
	@./scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; fi

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@$(BUILD_DIR)/kiln serve --listen $(LISTEN) --data-dir $(DATA_DIR) --region $(REGION)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

e2e: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L e2e

bench: build
	@./bench/run.sh

lint:
	@find src bench -name '*.cc' -o -name '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD_DIR)

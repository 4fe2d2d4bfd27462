# carte — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
MOCHA := node_modules/.bin/mocha
TSC := node_modules/.bin/tsc

.PHONY: help setup deps build test test-unit test-linux test-e2e bench bench-metaverse demo demo-down clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 17

setup: ## install system packages and npm dependencies, then build (idempotent)
	scripts/setup.sh
	$(MAKE) build

deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: deps ## compile TypeScript into dist/, and bundle the dashboard's page into dist/web/
	$(TSC) -p tsconfig.json
	node scripts/build-web.mjs

test: build test-unit test-linux test-e2e ## run every test tier (the root tiers need root; CI=true makes skipping them an error)

test-unit: build ## unit tests: no root, no containers
	$(MOCHA) 'dist/test/unit/**/*.test.js'

test-linux: build ## linux tests: real containers (root; skipped with a message otherwise, except under CI=true)
	$(MOCHA) 'dist/test/linux/**/*.test.js'

test-e2e: build ## end-to-end: the CLI and a real daemon, as a user runs them (root, like test-linux)
	$(MOCHA) 'dist/test/e2e/**/*.test.js'

bench: build ## run the benchmarks and print their figures (see docs/benchmarks.md)
	node dist/bench/cli.js
	node dist/bench/driver.js
	node dist/bench/reconciler.js
	node dist/bench/gateway.js
	node dist/bench/state.js
	node dist/bench/faults.js
	node dist/bench/dashboard.js
	node --expose-gc dist/bench/metrics.js
	node dist/bench/oci.js
	node dist/bench/metaverse.js

bench-metaverse: build ## only the metaverse benchmark: 80 players for 60 s against the whole demo
	node dist/bench/metaverse.js

demo: setup ## bring the metaverse demo up: build its images, run the daemon on manifests/, print the endpoints
	node dist/examples/metaverse/demo.js up

demo-down: build ## stop the demo's daemon and delete its services (volumes are kept)
	node dist/examples/metaverse/demo.js down

clean: ## remove build output
	rm -rf dist

# Two commands do all the set-up on a fresh machine (Python >= 3.11, git, make):
#   make run    - create .venv, install smsgw, start the gateway on its embedded defaults
#   make test   - create .venv, install smsgw with test extras (and, with npm, the Node interop
#                 peer in tests/interop), run ruff and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("smsgw needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smsgw run -c conf/smsgw.toml

# The interop peer (tests/interop): an SMSC built on the npm `smpp` package, run by Node.
INTEROP := tests/interop/node_modules/.installed

$(INTEROP): tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --silent
	touch $(INTEROP)

test: $(STAMP) $(INTEROP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

# Mutation testing (not in CI: about 8 minutes): 60 sampled mutants of each module against the
# tests that exercise it; tests/mutate.py prints each module's score and its survivors.
mutation: $(STAMP)
	$(BIN)/python tests/mutate.py gateway/engine/policy.py --tests tests/gateway/test_policy.py \
		tests/gateway/test_config.py tests/gateway/test_delivery.py tests/gateway/test_mutants_pinned.py
	$(BIN)/python tests/mutate.py carriers/smpp/decoder.py --tests tests/carriers/test_codec.py \
		tests/carriers/test_codec_properties.py tests/carriers/test_codec_interop.py \
		tests/carriers/test_session.py tests/carriers/test_inbound.py \
		tests/carriers/test_receipts.py tests/carriers/test_mutants_pinned.py
	$(BIN)/python tests/mutate.py carriers/smpp/receipts.py --tests tests/carriers/test_receipts.py \
		tests/carriers/test_inbound.py tests/gateway/test_policy.py tests/carriers/test_mutants_pinned.py
	$(BIN)/python tests/mutate.py routing/text.py --tests tests/routing \
		tests/gateway/test_segments_on_air.py tests/gateway/test_long_message_modes.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis tests/interop/node_modules

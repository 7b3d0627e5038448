# The README's two commands: `make run` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

.PHONY: setup run test test-slow test-package package lint bench clean-venv

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

# With a display: the desktop app on the embedded default model. Without one: the app's offscreen
# self-test, then the headless one-shot detection demo (writes out/annotated.png).
run: $(STAMP)
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
		$(PY) -m app; \
	else \
		echo "make run: no display found, running headless (offscreen self-test + detection demo)"; \
		QT_QPA_PLATFORM=offscreen $(PY) -m app --self-test && $(PY) -m core.run_default; \
	fi

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"
	$(VENV)/bin/lint-imports

# What `make test` leaves out: the self-test, torchrun and ResNet-50 tests (CI runs both). The packaged
# executable's test is `make test-package`.
test-slow: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "slow and not package"

# The one-folder executable for lab demos (packaging/os2d-studio.spec → dist/os2d-studio/; README
# "Packaged executable"). PyInstaller goes into .venv only here, pinned; intermediates in build/pyinstaller.
PYINSTALLER_VERSION ?= 6.22.3
PYINSTALLER_STAMP := $(VENV)/.pyinstaller-$(PYINSTALLER_VERSION)
PACKAGE_DIR := dist/os2d-studio

$(PYINSTALLER_STAMP): $(STAMP)
	$(PY) -m pip install -q "pyinstaller==$(PYINSTALLER_VERSION)"
	touch $(PYINSTALLER_STAMP)

package: $(PYINSTALLER_STAMP)
	$(PY) -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/os2d-studio.spec
	@du -sh $(PACKAGE_DIR)
	@echo "built $(PACKAGE_DIR)/os2d-studio (try: QT_QPA_PLATFORM=offscreen $(PACKAGE_DIR)/os2d-studio --self-test)"

# Builds the package, then runs the test that runs the built executable's --self-test.
test-package: package
	PACKAGE_DIR=$(PACKAGE_DIR) QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m package tests/test_package.py

clean-venv:
	rm -rf $(VENV)

# The README's two commands: `make run` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

.PHONY: setup run test test-package package lint bench clean-venv

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

clean-venv:
	rm -rf $(VENV)

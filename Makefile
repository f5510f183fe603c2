# The two commands: `make run` and `make test`. Everything installs from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_ENV := DJANGO_SETTINGS_MODULE=tests.settings
RUN_ENV := SECRET_KEY_FILE=var/secret_key LOG_FORMAT=text
PORT ?= 8000
GUNICORN_BIND ?= 127.0.0.1:$(PORT)

.PHONY: install run test format openapi clean bench bench-federation federation messages \
	compilemessages screenshots
SIZE ?= 1m

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make compilemessages: the French catalogue (locale/fr/LC_MESSAGES/django.po) compiled to .mo
## with Babel, pure Python: no GNU gettext needed on the machine. `make messages` re-extracts the
## strings (that one needs xgettext, a translator's tool).
compilemessages: install
	$(BIN)/pybabel compile --use-fuzzy --statistics -D django -d locale

messages: install
	$(TEST_ENV) $(BIN)/python manage.py makemessages -l fr --no-obsolete \
		--ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --ignore 'benchmarks/*'

var/secret_key:
	mkdir -p var
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key

## make run: install, migrate the embedded SQLite database, load the demo federation, serve on
## 127.0.0.1:$(PORT) (PORT=8010 make run), or wherever GUNICORN_BIND says; gunicorn prints the
## URLs of the sockets it really bound once it is ready.
run: install compilemessages var/secret_key
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py createcachetable
	$(RUN_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(RUN_ENV) $(BIN)/python manage.py generate_keys
	$(RUN_ENV) GUNICORN_BIND='$(GUNICORN_BIND)' $(BIN)/python manage.py load_demo
	@echo "Starting gunicorn on $(GUNICORN_BIND); Ctrl-C stops."
	$(RUN_ENV) GUNICORN_BIND='$(GUNICORN_BIND)' $(BIN)/gunicorn -c deploy/gunicorn.conf.py

## make test: install, lint, check migrations, run the suite (DATABASE_URL picks PostgreSQL).
test: install compilemessages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p var  # the SQLite default lives there; makemigrations opens it to check its history
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python -m pytest

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make openapi: regenerate the committed schema after an API change.
openapi: install
	$(TEST_ENV) $(BIN)/python manage.py spectacular --lang en --file deploy/openapi.yaml --validate

## make bench [SIZE=10m]: routing plans and lookups on PostgreSQL against their ceilings.
bench: install
	$(BIN)/python benchmarks/run_bench.py --size $(SIZE)

## make bench-federation: a 100,000-number plan over three registries vs one (PostgreSQL).
bench-federation: install
	$(BIN)/python benchmarks/federation_bench.py

## make screenshots: the README's pictures of the portal and the admin (docs/screenshots/*.png),
## taken in the system's Chromium from a demo federation in a throwaway database.
screenshots: install compilemessages
	$(TEST_ENV) $(BIN)/python -m pytest tests/portal/screenshots.py -s -q

## make federation: three registries on ports 8001-8003 (own SQLite databases and keys under
## var/federation/), a signed bootstrap, a demo in each; prints a token and curl commands.
federation: install
	$(BIN)/python deploy/federation.py --dir var/federation --base-port 8001

clean:
	rm -rf $(VENV) var/static

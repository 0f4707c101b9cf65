# The same app shipped the way such apps often are, for bench/bench_image.py to compare sizes with:
# one stage on a full base that keeps compilers and headers, the code copied before the dependencies,
# which pip installs from the declared ranges (no lockfile) and whose download cache stays in the layer.
# Build context: app/. The base would be the full python:3.13 image; offline it is a stand-in built with
#   scripts/standin-image flightdeck/naive-base:trixie trixie build-essential,python3-dev,python3-pip
ARG PYTHON_IMAGE=python:3.13
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY . .
# hadolint ignore=DL3013,DL3042
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > deps.txt \
    && pip install --break-system-packages -r deps.txt
# The settings refuse a weak SECRET_KEY with DEBUG off: a throwaway one for this step only.
RUN SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python3 manage.py collectstatic --noinput
ENV PORT=8000
CMD ["sh", "-c", "gunicorn airline.wsgi:application --bind 0.0.0.0:$PORT"]

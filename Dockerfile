# syntax=docker/dockerfile:1
# One image for every fleetpulse process (`fleet ingest`, `fleet api`, `fleet migrate`, `fleet creds ...`).
# Build: docker build -t fleetpulse .      Run: docker run --rm fleetpulse fleet --help

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/fleetpulse
WORKDIR /src
# .dockerignore keeps tests, docs, deploy/ (password files) and local env files out of the context.
COPY . .
RUN /opt/fleetpulse/bin/pip install .

FROM python:3.12-slim
ENV PATH=/opt/fleetpulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 fleet \
    && useradd --system --uid 10001 --gid fleet --home-dir /home/fleet --create-home \
       --shell /usr/sbin/nologin fleet
COPY --from=build /opt/fleetpulse /opt/fleetpulse
USER fleet
WORKDIR /home/fleet
EXPOSE 8080
CMD ["fleet", "--help"]

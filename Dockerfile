# One image for every process of the Procfile; compose.yaml (or your platform) picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY packetworker ./packetworker
RUN pip install . && rm -rf /src

# Never root: a process that parses hostile packets owns nothing but its own data folder.
RUN useradd --create-home --uid 10001 --user-group packetworker \
    && mkdir -p /data && chown packetworker:packetworker /data
USER packetworker
# var/archive (ARCHIVE_URL's default), var/spool and var/plan.jsonl are relative to here.
WORKDIR /data

EXPOSE 8000
CMD ["packetworker", "web"]

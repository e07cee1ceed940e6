# khabar's Telegram bot (`khabar serve`, long polling) in a container.
#
#   docker build -t khabar .
#   docker run -d --name khabar --restart on-failure \
#       -e KHABAR_TELEGRAM_TOKEN=123456:ABC… -e KHABAR_ADMIN_IDS=123456 \
#       -v khabar-data:/data khabar
#
# The first start builds the embedding model into the volume (about a minute) and indexes
# the seed article. Other commands on the same store:
#   docker run --rm -v khabar-data:/data khabar khabar ingest https://…/feed.xml
# A webhook instead of long polling (behind an HTTPS proxy that forwards to port 8443):
#   docker run … -p 8443:8443 khabar khabar serve --webhook-url https://host/path \
#       --listen 0.0.0.0 --port 8443
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, the CPU build from PyTorch's CPU index: from PyPI, pip would install the
# CUDA build (gigabytes that this image never uses). khabar accepts any torch >= 2.1.
ARG TORCH_VERSION=2.13.0
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"

# khabar with the bot's extra, and Milvus's client for an archive on a Milvus server
# (docker-compose.yml; .dockerignore keeps virtualenvs, data and .git out).
WORKDIR /src
COPY . .
RUN pip install ".[telegram,milvus]" && cd / && rm -rf /src

# Not root: a user of its own, owning only the data volume (models, store, bot state).
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin khabar \
    && install -d -o khabar -g khabar -m 0700 /data
ENV KHABAR_HOME=/data
VOLUME ["/data"]
WORKDIR /data
USER khabar

CMD ["khabar", "serve"]

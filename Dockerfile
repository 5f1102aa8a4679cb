# hex: scan AI/ML model files without loading them.
#
#   docker build -t hex .
#   docker run --rm --read-only --cap-drop=ALL --security-opt=no-new-privileges \
#     --tmpfs /tmp -v "$PWD/models:/scan:ro" -v hex-home:/home/hex/.layerd/hex hex scan /scan
#
# The image runs as the unprivileged user "hex" (UID 1000). The scanned tree can be mounted
# read-only: hex never writes to what it scans. HEX_HOME (vulnerability DB, findings
# history) is a volume, so `hex vulnfetch fetch` in one container serves later scans.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="hex" \
      org.opencontainers.image.description="Security scanner for AI/ML model artifacts" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /install /usr/local
RUN groupadd --gid 1000 hex \
    && useradd --uid 1000 --gid hex --create-home --shell /usr/sbin/nologin hex \
    && mkdir -p /home/hex/.layerd/hex \
    && chown -R hex:hex /home/hex
ENV HEX_HOME=/home/hex/.layerd/hex \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/home/hex/.layerd/hex"]
USER 1000:1000
WORKDIR /home/hex
ENTRYPOINT ["hex"]
CMD ["--help"]

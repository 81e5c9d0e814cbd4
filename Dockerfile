# syntax=docker/dockerfile:1
# The tweetmeet server: built with the toolchain and npm (for the embedded
# GraphiQL), run from a small Debian image as an unprivileged user.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tweetmeet \
    && cp target/release/tweetmeet /tweetmeet

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/tweetmeet tweetmeet
COPY --from=build /tweetmeet /usr/local/bin/tweetmeet
USER tweetmeet
WORKDIR /var/lib/tweetmeet
# Inside a container the server must listen beyond loopback; the rest comes
# from the environment (README, Configuration).
ENV TWEETMEET_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${TWEETMEET_BIND##*:}/readyz" || exit 1
ENTRYPOINT ["tweetmeet"]
CMD ["serve"]

# Stand-in for the official caddy image: caddy on PATH, config in /etc/caddy/Caddyfile, state in /data.
ARG BASE=flightdeck/services-base:trixie
FROM ${BASE}
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
RUN mkdir -p /config /data /etc/caddy && printf ':80 {\n\trespond "ok"\n}\n' > /etc/caddy/Caddyfile
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]

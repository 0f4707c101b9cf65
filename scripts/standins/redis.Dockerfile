# Stand-in for the official redis image: redis-server on 6379, reachable from other containers.
ARG BASE=flightdeck/services-base:trixie
FROM ${BASE}
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--dir", "/tmp"]

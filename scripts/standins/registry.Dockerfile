# Stand-in for the official registry image (CNCF distribution): Debian's docker-registry with the same
# config path, port and storage directory; REGISTRY_* variables override the file as upstream documents.
ARG BASE=flightdeck/services-base:trixie
FROM ${BASE}
COPY registry-config.yml /etc/docker/registry/config.yml
EXPOSE 5000
ENTRYPOINT ["docker-registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]

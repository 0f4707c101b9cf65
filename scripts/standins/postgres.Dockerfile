# Stand-in for the official postgres image: the same interface (POSTGRES_USER, POSTGRES_PASSWORD[_FILE],
# POSTGRES_DB, PGDATA, port 5432), built from Debian's packages because no registry is reachable here.
ARG BASE=flightdeck/services-base:trixie
FROM ${BASE}
ENV PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]

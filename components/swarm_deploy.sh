#!/bin/sh
# Deploy (or remove) a flightdeck swarm stack. Pulumi runs this text as the command of the SwarmStack's
# deploy resource, in the local shell or over SSH on the swarm manager; tests run the same file.
#
# stdin: the stack file (compose format). Environment:
#   FLIGHTDECK_ACTION          deploy (default) or delete
#   FLIGHTDECK_STACK           the swarm stack's name
#   FLIGHTDECK_IMAGE           the web image, repository@sha256:...
#   FLIGHTDECK_OBJECTS         lines "<secret|config> <KEY> <docker name>"; the value of each is in
#                              FLIGHTDECK_SECRET_<KEY> / FLIGHTDECK_CONFIG_<KEY>
#   FLIGHTDECK_RELEASE_COMMAND the release command, run once per new image before traffic moves to it
#   FLIGHTDECK_RELEASE_ENV     lines NAME=value: the release container's non-secret environment; the
#                              secrets whose KEY is an environment variable name are added to it
#   FLIGHTDECK_HEALTH_URL      /healthz through the proxy on this host
#   FLIGHTDECK_TIMEOUT         seconds the rollout and health may take (default 300)
# Exit status 0 only when every web task runs FLIGHTDECK_IMAGE and the health URL answers 200.
set -eu

action=${FLIGHTDECK_ACTION:-deploy}
stack=${FLIGHTDECK_STACK:?FLIGHTDECK_STACK is not set}
timeout=${FLIGHTDECK_TIMEOUT:-300}
web="${stack}_web"
KEEP_RELEASES=20 # release records kept for scripts/rollback
network="${stack}_app"
started=$(date +%s)

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "$stack" "$*" >&2; }
fail() {
	log "FAILED: $*"
	if docker service inspect "$web" >/dev/null 2>&1; then
		log "web tasks (docker service ps --no-trunc $web):"
		docker service ps --no-trunc --format '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}' "$web" >&2 || true
	fi
	exit 1
}
remaining() { echo $((timeout - ($(date +%s) - started))); }

# Remove this stack's secrets and configs that the current deploy does not use (in-use ones refuse).
prune_objects() {
	keep=$1
	for kind in secret config; do
		docker "$kind" ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}}' |
			while read -r name; do
				case " $keep " in *" $name "*) continue ;; esac
				docker "$kind" rm "$name" >/dev/null 2>&1 || true
			done
	done
}

# Is every service of the stack (or only service $1) at its desired task count, and each running task of
# the web service on image $2 (when given)?
converged() {
	docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}} {{.Replicas}}' |
		awk -F'[/ ]' -v only="$1" '(only == "" || $1 == only) && $2 != $3 { bad = 1 } END { exit bad }' ||
		return 1
	[ -n "${2:-}" ] || return 0
	docker service ps --no-trunc --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' "$web" |
		awk -v image="$2" '$1 != image || $2 != "Running" { bad = 1 } END { exit bad }'
}

if [ "$action" = delete ]; then
	log "removing the stack (named volumes, such as the database's, are kept)"
	docker stack rm "$stack" >&2 || true
	while [ -n "$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack")" ] ||
		[ -n "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ]; do
		[ "$(remaining)" -gt 0 ] || fail "the stack's services or networks are still there after ${timeout}s"
		sleep 1
	done
	prune_objects ""
	docker config ls -q --filter "label=flightdeck.release=$stack" | xargs -r docker config rm >/dev/null
	log "removed"
	exit 0
fi

image=${FLIGHTDECK_IMAGE:?FLIGHTDECK_IMAGE is not set}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/stack.yml"

# Secrets and configs: create the ones that do not exist yet (values from the environment, never a file or
# a command line).
keep=""
printf '%s' "${FLIGHTDECK_OBJECTS:-}" >"$work/objects"
while read -r kind key name; do
	[ -n "$kind" ] || continue
	case $key in *[!A-Za-z0-9_]*) fail "bad object key $key" ;; esac
	keep="$keep $name"
	docker "$kind" inspect "$name" >/dev/null 2>&1 && continue
	upper=$(printf '%s' "$kind" | tr '[:lower:]' '[:upper:]')
	eval "printf '%s' \"\${FLIGHTDECK_${upper}_${key}:?FLIGHTDECK_${upper}_${key} is not set}\"" |
		docker "$kind" create --label "com.docker.stack.namespace=$stack" "$name" - >/dev/null
	log "created $kind $name"
done <"$work/objects"

# The release command (migrations) in a one-off container of the new image on the stack's network.
release() {
	[ -n "${FLIGHTDECK_RELEASE_COMMAND:-}" ] || return 0
	printf '%s' "${FLIGHTDECK_RELEASE_ENV:-}" >"$work/release.env"
	set --
	while read -r kind key name; do
		[ "$kind" = secret ] || continue
		case $key in [!A-Z_]* | *[!A-Z0-9_]*) continue ;; esac
		eval "export $key=\"\$FLIGHTDECK_SECRET_$key\""
		set -- "$@" --env "$key"
	done <"$work/objects"
	log "release: $FLIGHTDECK_RELEASE_COMMAND"
	attempt=1
	# shellcheck disable=SC2086 # the release command is split into words on purpose
	until docker run --rm --network "$network" --env-file "$work/release.env" "$@" "$image" \
		$FLIGHTDECK_RELEASE_COMMAND >&2; do
		# The database may still be starting (first deploy); anything else fails every attempt.
		[ "$attempt" -lt 5 ] && [ "$(remaining)" -gt 10 ] || fail "the release command failed"
		attempt=$((attempt + 1))
		sleep 5
	done
}

previous=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$web" 2>/dev/null || true)
template_before=$(docker service inspect --format '{{json .Spec.TaskTemplate}}' "$web" 2>/dev/null || true)
update_before=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}' "$web" 2>/dev/null || true)

if [ -n "$previous" ] && [ "$previous" != "$image" ]; then
	release # before any task of the new image takes traffic
fi
log "docker stack deploy (image $image)"
docker stack deploy --prune --with-registry-auth --compose-file "$work/stack.yml" "$stack" >&2
if [ -z "$previous" ]; then
	# A new stack: its database exists only now (no traffic reaches the app yet either).
	if docker service inspect "${stack}_db" >/dev/null 2>&1; then
		until converged "${stack}_db"; do
			[ "$(remaining)" -gt 0 ] || fail "${stack}_db did not start within ${timeout}s"
			sleep 1
		done
	fi
	release
fi

template_after=$(docker service inspect --format '{{json .Spec.TaskTemplate}}' "$web")
rolling=0
[ -z "$template_before" ] || [ "$template_before" = "$template_after" ] || rolling=1

# Wait until swarm has finished: every service at its desired replicas and, after a change of the web
# service, its update completed (not rolled back, not paused) with every web task on the new image. An
# update status that started before this deploy is an earlier one's: it counts for nothing.
while :; do
	[ "$(remaining)" -gt 0 ] || fail "the stack did not converge within ${timeout}s"
	status=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}} {{.UpdateStatus.StartedAt}}{{end}}' "$web")
	if [ "$rolling" = 1 ]; then
		if [ -z "$status" ] || [ "${status#* }" = "$update_before" ]; then
			sleep 1
			continue
		fi
		case ${status%% *} in
		completed) ;;
		rollback_* | paused)
			fail "swarm stopped the update of $web (${status%% *}): $(docker service inspect \
				--format '{{.UpdateStatus.Message}}' "$web"); it now runs $(docker service inspect \
				--format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$web")"
			;;
		*)
			sleep 1
			continue
			;;
		esac
	fi
	spec_image=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$web")
	[ "$spec_image" = "$image" ] || fail "$web runs $spec_image, not $image"
	if converged "" "$image"; then
		break
	fi
	sleep 1
done
log "converged in $(($(date +%s) - started))s; checking health through the proxy"

until [ "$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 5 \
	--header 'Host: localhost' "${FLIGHTDECK_HEALTH_URL:?}" || true)" = 200 ]; do
	[ "$(remaining)" -gt 0 ] || fail "$FLIGHTDECK_HEALTH_URL did not answer 200 within ${timeout}s"
	sleep 1
done

# Record the release (the history scripts/rollback lists), then drop the objects no deploy uses.
if [ "$previous" != "$image" ]; then
	printf '%s\n' "$image" | docker config create --label "flightdeck.release=$stack" \
		--label "flightdeck.image=$image" "${stack}_release_$(date -u +%Y%m%dT%H%M%S)_$$" - >/dev/null
	docker config ls --filter "label=flightdeck.release=$stack" --format '{{.Name}}' | sort -r |
		tail -n +"$((KEEP_RELEASES + 1))" | xargs -r docker config rm >/dev/null
fi
prune_objects "$keep"
log "deployed in $(($(date +%s) - started))s"
printf 'deployed %s\n' "$image"

#!/bin/sh
# Deploy (or remove) the private registry's swarm stack on the swarm manager, before any image is pushed.
# Pulumi runs this text over SSH as the command of RegistryStack (components/registry_stack.py).
#
# stdin: the stack file (compose format). Environment:
#   FLIGHTDECK_ACTION             deploy (default) or delete
#   FLIGHTDECK_STACK              the swarm stack's name, <app>-registry
#   FLIGHTDECK_SECRETS            lines "<KEY> <docker secret name>"; each value is in FLIGHTDECK_SECRET_<KEY>
#   FLIGHTDECK_REGISTRY_PORT      the port every node's registry task is published on (127.0.0.1:<port>)
#   FLIGHTDECK_REGISTRY_USER      the registry's user; its password is in FLIGHTDECK_REGISTRY_PASSWORD
#   FLIGHTDECK_TIMEOUT            seconds the rollout may take (default 180)
# Exit status 0 only when a registry task runs on every node, this node's registry asks for credentials
# (HTTP 401 on /v2/) and the deploy user is logged in to it: `docker stack deploy --with-registry-auth` of
# the app stack hands that login to the nodes that pull.
set -eu

action=${FLIGHTDECK_ACTION:-deploy}
stack=${FLIGHTDECK_STACK:?FLIGHTDECK_STACK is not set}
port=${FLIGHTDECK_REGISTRY_PORT:-5000}
timeout=${FLIGHTDECK_TIMEOUT:-180}
address="127.0.0.1:$port"
started=$(date +%s)

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "$stack" "$*" >&2; }
fail() {
	log "FAILED: $*"
	docker service ps --no-trunc --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' \
		"${stack}_registry" >&2 2>/dev/null || true
	exit 1
}
remaining() { echo $((timeout - ($(date +%s) - started))); }

# Remove this stack's secrets that the current deploy does not use (secrets still in use refuse).
prune_secrets() {
	keep=$1
	docker secret ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}}' |
		while read -r name; do
			case " $keep " in *" $name "*) continue ;; esac
			docker secret rm "$name" >/dev/null 2>&1 || true
		done
}

if [ "$action" = delete ]; then
	log "removing the registry stack (its data stays in the bucket)"
	docker stack rm "$stack" >&2 || true
	while [ -n "$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack")" ]; do
		[ "$(remaining)" -gt 0 ] || fail "the registry's service is still there after ${timeout}s"
		sleep 1
	done
	prune_secrets ""
	docker logout "$address" >/dev/null 2>&1 || true
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/stack.yml"

# Secrets are immutable and named by a digest of their value: create the ones that do not exist yet, from
# the environment (never a file or a command line).
keep=""
printf '%s' "${FLIGHTDECK_SECRETS:?FLIGHTDECK_SECRETS is not set}" >"$work/secrets"
while read -r key name; do
	[ -n "$key" ] || continue
	case $key in *[!A-Za-z0-9_]*) fail "bad secret key $key" ;; esac
	keep="$keep $name"
	docker secret inspect "$name" >/dev/null 2>&1 && continue
	eval "printf '%s' \"\${FLIGHTDECK_SECRET_${key}:?FLIGHTDECK_SECRET_${key} is not set}\"" |
		docker secret create --label "com.docker.stack.namespace=$stack" "$name" - >/dev/null
	log "created secret $name"
done <"$work/secrets"

update_before=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.StartedAt}}{{end}}' \
	"${stack}_registry" 2>/dev/null || true)
log "docker stack deploy"
docker stack deploy --prune --compose-file "$work/stack.yml" "$stack" >&2

# Settled: a running task on every node (global service) and no update of this deploy still going.
settled() {
	replicas=$(docker service ls --filter "name=${stack}_registry" --format '{{.Replicas}}')
	case $replicas in "" | 0/* | */0) return 1 ;; esac
	[ "${replicas%%/*}" = "${replicas#*/}" ] || return 1
	status=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}} {{.UpdateStatus.StartedAt}}{{end}}' \
		"${stack}_registry")
	if [ -z "$status" ] || [ "${status#* }" = "$update_before" ]; then
		return 0
	fi
	case ${status%% *} in
	completed) return 0 ;;
	rollback_* | paused) fail "swarm stopped the registry's update (${status%% *})" ;;
	*) return 1 ;;
	esac
}
until settled; do
	[ "$(remaining)" -gt 0 ] || fail "the registry did not run on every node within ${timeout}s"
	sleep 2
done

until [ "$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 5 "http://$address/v2/" ||
	true)" = 401 ]; do
	[ "$(remaining)" -gt 0 ] || fail "http://$address/v2/ did not answer 401 (auth on) within ${timeout}s"
	sleep 2
done

user=${FLIGHTDECK_REGISTRY_USER:?FLIGHTDECK_REGISTRY_USER is not set}
printf '%s' "${FLIGHTDECK_REGISTRY_PASSWORD:?FLIGHTDECK_REGISTRY_PASSWORD is not set}" |
	docker login --username "$user" --password-stdin "$address" >/dev/null ||
	fail "the registry refused the login of $user"
prune_secrets "$keep"
log "the registry answers on $address on every node ($(($(date +%s) - started))s)"
printf 'registry %s\n' "$address"

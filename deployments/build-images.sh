#!/usr/bin/env bash
# Builds static Linux binaries of genrelay and NATS, stages them with the
# host's CA certificates in bin/linux/, and builds the container images
# FROM scratch: genrelay/{nats,ingress,moderation,printclean}:$GENRELAY_IMAGE_TAG
# (default dev). No base image is pulled, so it works without a registry.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stage=$root/bin/linux
tag=${GENRELAY_IMAGE_TAG:-dev}
ca_bundle=/etc/ssl/certs/ca-certificates.crt
go=${GO:-go}

# Static binaries: no cgo, so they run in an image with no libc.
build() {
	CGO_ENABLED=0 GOOS=linux "$go" build -trimpath -ldflags='-s -w' "$@"
}

ensure_ca_bundle() {
	if [[ -s $ca_bundle ]]; then
		return
	fi
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing Debian's ca-certificates for $ca_bundle" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates
		return
	fi
	echo "missing $ca_bundle: install your distribution's ca-certificates" >&2
	exit 1
}

stage_context() {
	rm -rf "$stage"
	mkdir -p "$stage/data"

	echo "building genrelay binaries into $stage" >&2
	(cd "$root" && build -o "$stage/" ./services/ingress \
		./services/moderation ./pkg/examples/printclean)

	# nats-server at the version that services/devnats/go.mod pins.
	echo "building nats-server into $stage" >&2
	(cd "$root/services/devnats" &&
		build -o "$stage/nats-server" github.com/nats-io/nats-server/v2)

	# natsprobe is a module with no genrelay imports, so it builds alone.
	(cd "$root/deployments/natsprobe" &&
		GOWORK=off build -o "$stage/natsprobe" .)

	cp "$ca_bundle" "$stage/ca-certificates.crt"
	cp "$root/deployments/nats/nats.conf" "$stage/nats.conf"
}

build_images() {
	local name out
	for name in nats ingress moderation printclean; do
		echo "building image genrelay/$name:$tag" >&2
		# The output is shown only on failure: without the buildx plugin
		# Docker prints a deprecation notice for every build.
		if ! out=$(docker build --quiet --tag "genrelay/$name:$tag" \
			--file "$root/deployments/$name/Dockerfile" "$stage" 2>&1); then
			echo "$out" >&2
			return 1
		fi
	done
}

ensure_ca_bundle
stage_context
build_images

# Shared settings of the OpenZFS tier scripts; sourced, not run.
#
# The guest image lives outside the repository, in a directory named after a
# hash of the recipe (build.sh and everything under guest/), so a changed
# recipe builds a new image and an unchanged one is reused.

OPENZFS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OPENZFS_CACHE=${ZREP_OPENZFS_CACHE:-/var/cache/zrep-openzfs}

# recipe_hash prints the first 16 hex digits of the sha256 over the recipe files.
recipe_hash() {
	(cd "$OPENZFS_DIR" && find build.sh guest -type f -print0 | LC_ALL=C sort -z |
		xargs -0 sha256sum | sha256sum | cut -c1-16)
}

# image_dir prints the cache directory of the current recipe's image.
image_dir() {
	echo "$OPENZFS_CACHE/$(recipe_hash)"
}

# banner prints a message that cannot be missed in a CI log, on stderr.
banner() {
	local line='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
	{
		echo "$line"
		printf '!!! %s\n' "$@"
		echo "$line"
	} >&2
}

# install_host_packages installs the host tools the tier needs, with apt-get.
install_host_packages() {
	local need=()
	command -v debootstrap >/dev/null || need+=(debootstrap)
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	command -v qemu-img >/dev/null || need+=(qemu-utils)
	command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
	command -v ssh-keygen >/dev/null || need+=(openssh-client)
	command -v ssh >/dev/null || need+=(openssh-client)
	command -v flock >/dev/null || need+=(util-linux)
	[ ${#need[@]} -gt 0 ] || return 0
	[ "$(id -u)" = 0 ] || { banner "missing host tools: ${need[*]}" "run as root so they can be installed"; return 1; }
	echo "openzfs: installing host packages: ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Stale or absent package lists make install fail: update and try once more.
	if ! apt-get install -y -q --no-install-recommends "${need[@]}" >&2; then
		apt-get update -q >&2 &&
			apt-get install -y -q --no-install-recommends "${need[@]}" >&2 || {
			banner "OPENZFS TIER: could not install host packages: ${need[*]}"
			return 1
		}
	fi
}

#!/usr/bin/env bash
# Provision one lab VM (run as root by Vagrant): build faultline's .deb from the synced
# repository, install it, run faultlined as a service, and let the vagrant user reach every
# other VM over SSH for faultctl --hosts.
#
#   provision.sh NODE-NAME
set -euo pipefail

readonly NODE=${1:?usage: provision.sh NODE-NAME}
readonly SRC=/vagrant
readonly LAB=$SRC/vagrant/.lab
readonly BUILD=/var/tmp/faultline-build
export DEBIAN_FRONTEND=noninteractive

say() { printf '[%s] %s\n' "$NODE" "$*"; }

# What building needs: the build half of tools/setup's REQUIRED list, plus dpkg-dev for the
# .deb's Depends. tools/setup itself would also pull in the QEMU test tier.
readonly BUILD_PACKAGES=(
	build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev
	zlib1g-dev libnl-3-dev libnl-route-3-dev libboost-program-options-dev
	libspdlog-dev nlohmann-json3-dev libgtest-dev libyaml-cpp-dev dpkg-dev
)
# For the walkthrough in vagrant/README.md.
readonly LAB_PACKAGES=(iputils-ping iperf3 openssh-client)

say "installing packages"
apt-get -q update
apt-get -q -y --no-install-recommends install "${BUILD_PACKAGES[@]}" "${LAB_PACKAGES[@]}"

# A .deb already in vagrant/.lab (built once on a Debian 12 host, or by the first VM) saves
# the other VMs a build each.
deb=$(find "$LAB" -maxdepth 1 -name 'faultline_*_amd64.deb' -print -quit 2>/dev/null || true)
if [[ -z $deb ]]; then
	say "building faultline (a few minutes)"
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFAULTLINE_BUILD_TESTS=OFF >/dev/null
	cmake --build "$BUILD" -j "$(nproc)" >/dev/null
	(cd "$BUILD" && cpack -G DEB >/dev/null)
	deb=$(find "$BUILD" -maxdepth 1 -name 'faultline_*_amd64.deb' -print -quit)
	[[ -n $deb ]] || {
		say "cpack made no .deb"
		exit 1
	}
fi
say "installing $(basename -- "$deb")"
apt-get -q -y --no-install-recommends install "$deb"

# The package makes the group but leaves the service to the operator: this is the operator.
systemctl enable --now faultlined.service
usermod -a -G faultline vagrant

# One lab-wide key (made by the Vagrantfile's trigger on the host) in every VM, so that
# faultctl --hosts on any VM reaches all six, itself included.
if [[ ! -r $LAB/id_ed25519 ]]; then
	say "no lab key in $LAB (the Vagrantfile's trigger makes it on vagrant up); skipping SSH setup"
	exit 0
fi
ssh_dir=/home/vagrant/.ssh
install -d -m 700 -o vagrant -g vagrant "$ssh_dir"
install -m 600 -o vagrant -g vagrant "$LAB/id_ed25519" "$ssh_dir/id_ed25519"
install -m 644 -o vagrant -g vagrant "$LAB/id_ed25519.pub" "$ssh_dir/id_ed25519.pub"
touch "$ssh_dir/authorized_keys"
grep -qxF -- "$(cat "$LAB/id_ed25519.pub")" "$ssh_dir/authorized_keys" ||
	cat "$LAB/id_ed25519.pub" >>"$ssh_dir/authorized_keys"
chown vagrant:vagrant "$ssh_dir/authorized_keys"
chmod 600 "$ssh_dir/authorized_keys"
# The VMs' host keys are new on every `vagrant up`; a lab on a private network accepts them on
# first use rather than asking six times.
cat >"$ssh_dir/config" <<'CONF'
Host 192.168.56.*
    StrictHostKeyChecking accept-new
    UserKnownHostsFile ~/.ssh/known_hosts_lab
    IdentityFile ~/.ssh/id_ed25519
CONF
chown vagrant:vagrant "$ssh_dir/config"
chmod 600 "$ssh_dir/config"

say "faultlined: $(systemctl is-active faultlined.service)"

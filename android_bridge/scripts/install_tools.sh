#!/bin/sh
# Tools for the Android bridge's host and ARM tests (run as root on Debian 12):
#   make android-host-test  -> JDK 17 (javac), pkg-config, libjpeg62-turbo-dev
#   make arm64-test         -> aarch64 cross gcc, arm64 libjpeg-turbo (multiarch), qemu-user
set -eu
if [ "$(id -u)" != 0 ]; then
  echo "run as root (apt-get)" >&2
  exit 1
fi
dpkg --add-architecture arm64
apt-get update
apt-get install -y --no-install-recommends \
  openjdk-17-jdk-headless pkg-config libjpeg62-turbo-dev \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross libjpeg62-turbo-dev:arm64 qemu-user

#!/bin/sh
# Assembles mbr.S into the 440 bytes of boot code imgtool embeds (boot/mbr/mbr.bin).
# Usage: boot/mbr/assemble.sh [OUT]. Needs GNU as and ld (binutils); output is reproducible.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-$dir/mbr.bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --32 -o "$tmp/mbr.o" "$dir/mbr.S"
ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$tmp/mbr.bin" "$tmp/mbr.o"
size=$(wc -c < "$tmp/mbr.bin")
if [ "$size" -ne 440 ]; then
  echo "assemble.sh: mbr.bin is $size bytes, not 440" >&2
  exit 1
fi
chmod 644 "$tmp/mbr.bin"
mv "$tmp/mbr.bin" "$out"

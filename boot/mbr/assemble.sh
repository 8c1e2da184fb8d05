#!/bin/sh
# Assembles mbr.S into the boot code imgtool embeds: the 440 bytes of the MBR's first stage
# (boot/mbr/mbr.bin) and the second stage for the gap (boot/mbr/stage2.bin, 1 KiB).
# Usage: boot/mbr/assemble.sh [OUT_DIR]. Needs GNU as and ld (binutils); output is
# reproducible.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-$dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --32 -o "$tmp/mbr.o" "$dir/mbr.S"
ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$tmp/all.bin" "$tmp/mbr.o"
size=$(wc -c < "$tmp/all.bin")
if [ "$size" -gt 2048 ]; then
  echo "assemble.sh: the second stage ends at byte $size, past its 1 KiB at 1024" >&2
  exit 1
fi
# First stage: exactly 440 bytes (the table is the last thing in it).
head -c 440 "$tmp/all.bin" > "$tmp/mbr.bin"
if [ "$(od -An -tu1 -j440 -N584 -v "$tmp/all.bin" | tr -d ' 0\n')" != "" ]; then
  echo "assemble.sh: the first stage is longer than 440 bytes" >&2
  exit 1
fi
# Second stage: from offset 1024, padded to 1 KiB.
tail -c +1025 "$tmp/all.bin" > "$tmp/stage2.bin"
truncate -s 1024 "$tmp/stage2.bin"
chmod 644 "$tmp/mbr.bin" "$tmp/stage2.bin"
mv "$tmp/mbr.bin" "$tmp/stage2.bin" "$out/"

#!/bin/bash
# Builds the PVH guest of the xl checks (test/xen/xl/xl-guest.c) into OUT_DIR and prints the
# ELF's path. Runs on the host: dom0 has no compiler. Nothing built here is committed.
#
#   scripts/build-xl-guest.sh OUT_DIR
#
# Exit status 3 when the host cannot build it (no gcc, no 32-bit code generation, or no Xen
# public headers: apt-get install gcc libxen-dev).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/../test/xen/xl/xl-guest.c
OUT=${1:?usage: scripts/build-xl-guest.sh OUT_DIR}
for tool in gcc ld; do
  command -v "$tool" >/dev/null || { echo "build-xl-guest: no '$tool' on PATH (apt-get install gcc binutils)" >&2; exit 3; }
done
[ -r /usr/include/xen/io/xs_wire.h ] || { echo "build-xl-guest: no Xen public headers (apt-get install libxen-dev)" >&2; exit 3; }
mkdir -p "$OUT"
# One loadable image from 1 MiB up (the PVH entry runs at physical addresses, paging off): code
# and strings, the entry note, then the zeroed pages. Without a script, ld would put the note at
# its default base (128 MiB), far past a small guest's memory.
cat >"$OUT/xl-guest.ld" <<'LD'
ENTRY(_start)
SECTIONS {
  . = 0x100000;
  .text : { *(.text*) *(.rodata*) }
  .note.Xen : { *(.note.Xen) }
  .data : { *(.data*) }
  .bss : { *(.bss*) *(COMMON) }
  /DISCARD/ : { *(.comment) *(.note.GNU-stack) *(.eh_frame*) }
}
LD
gcc -m32 -march=i686 -ffreestanding -fno-pic -fno-stack-protector -fno-asynchronous-unwind-tables \
  -nostdlib -O2 -Wall -Wextra -Werror -c "$SRC" -o "$OUT/xl-guest.o"
ld -m elf_i386 -nostdlib --build-id=none -z noseparate-code -T "$OUT/xl-guest.ld" \
  -o "$OUT/xl-guest.elf" "$OUT/xl-guest.o"
echo "$OUT/xl-guest.elf"

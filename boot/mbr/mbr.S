# rustkrazy x86 MBR boot code: loads a Linux bzImage straight from the FAT boot partition,
# with no bootloader files, following the Linux x86 boot protocol (Documentation/arch/x86/
# boot.rst), and implements the boot record: a one-shot trial boot, and falling back from a
# committed slot that stopped booting.
#
# Two stages, assembled together: the BIOS loads the first (the 440 bytes before the disk
# signature) at 0x7c00; it loads the second from the gap before partition 1 to 0x8000 and
# jumps there. `imgtool mkimg` fills the field at offset 420 with the second stage's sector
# (it has two places, so that admind replaces the boot code with one write of sector 0:
# boot/src/mbr.rs) and the table at offset 424 with where each root slot's kernel and
# cmdline files lie (contiguous regions of the FAT partition, allocated once at mkimg
# time: an update rewrites their bytes, never their place). A slot is kernel + cmdline +
# root, chosen together by the record. The kernel's own header says how long it is
# (setup_sects and syssize), so nothing here changes on update.
#
# The second stage calls the first's disk and failure routines: a first stage only ever
# names the second stage assembled with it.
#
# Memory used (all below 640 KiB, addresses linear):
#   0x07c00  first stage          0x08000  second stage
#   0x09000  record copy 0        0x09200  record copy 1        0x09400  a slot's trailer
#   0x10000  kernel setup (real-mode part), heap up to 0x1de00, stack top 0x1e000
#   0x1e000  kernel command line  0x20000  bounce buffer for the protected-mode part
#   0x100000 protected-mode kernel, copied up from the bounce buffer in unreal mode
#
# Boot record (format and the same decision in Rust: boot/src/record.rs): two copies, each
# "RKB" + version 2, a sequence number, state (0 committed, 1 try, 2 tried), committed slot,
# trial slot (partition numbers 2 or 3), attempts, flags, and a CRC-32 at its end. The newest
# valid copy decides; the changed record goes over the other copy, one sector, before any
# kernel byte is read:
#   TRY                  -> TRIED, boot the trial slot once
#   attempts < 3         -> attempts + 1, boot the committed slot
#   COMMITTED, attempts 3, flags say the trial slot may be fallen back to, and its
#   trailer is there     -> commit the trial slot, attempts 1, fell back, no fall-back to
#                           the slot given up; boot it
#   otherwise            -> boot the committed slot, nothing written
# What it writes also flags the copies it found damaged, for init to report.
# With no valid copy it boots slot A (root A with kernel A) and writes nothing. A copy it
# cannot read counts as damaged; a record write that fails only leaves the boot uncounted.
#
# Each cmdline file is at most 511 bytes and imgtool zeroes the rest of its sector, so the
# sector read is NUL-terminated as the kernel expects.
#
# Assemble with boot/mbr/assemble.sh (GNU as + ld from binutils).

        .intel_syntax noprefix
        .code16
        .text
        .globl _start

        .set STAGE2_SECTORS, 2
        .set COPY0, 0x9000
        .set COPY1, 0x9200
        .set COPY0_LBA, 512
        .set COPY1_LBA, 1536
        .set TRAILER, 0x9400
        .set MAX_ATTEMPTS, 3
        .set PARTITIONS, 0x7c00 + 446   # the MBR's partition entries, as the BIOS loaded it
        .set SETUP_SEG, 0x1000
        .set CMDLINE_SEG, 0x1e00
        .set BOUNCE_SEG, 0x2000
        .set CHUNK_SECTORS, 64          # 32 KiB per BIOS read
        .set DRIVE, 0x0600              # scratch: BIOS drive number
        .set OP, 0x0601                 # scratch: INT 13h function for disk
        .set DAMAGED, 0x0602            # scratch: record flags for damaged copies

_start:
        # Flat real-mode segments, stack below the code (MOV SS holds off interrupts for
        # the next instruction, so no CLI is needed).
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7c00
        mov     [DRIVE], dl
        xor     ecx, ecx                # upper half stays 0: CX counts sectors

        # A20 through the fast gate (bit 1 of port 0x92; never touch bit 0, the reset).
        in      al, 0x92
        or      al, 2
        and     al, 0xfe
        out     0x92, al

        # The second stage.
        mov     bx, 0x8000 >> 4
        mov     eax, [stage2_lba]
        mov     cx, STAGE2_SECTORS
        call    read
        jmp     stage2

# Disk access by LBA (INT 13h extensions). EAX = LBA, CX = sectors, BX = segment (offset 0).
# Preserves all registers. `read` prints a message and resets on failure; `try_read` and
# `write` return with CF set instead.
write:
        mov     byte ptr [OP], 0x43
        jmp     disk
read:
        call    try_read
        jc      disk_failed
        ret
try_read:
        mov     byte ptr [OP], 0x42
disk:
        pushad
        push    dword ptr 0             # disk address packet, built on the stack:
        push    eax                     #   LBA (64 bits)
        push    bx                      #   buffer segment
        push    0                       #   buffer offset
        push    cx                      #   sector count
        push    0x10                    #   packet size
        mov     si, sp
        mov     dx, [DRIVE]             # DL = drive, DH = function
        mov     ah, dh
        xor     al, al                  # write flags: no verify
        int     0x13
        lea     sp, [si + 16]
        popad                           # keeps INT 13h's CF
        ret
disk_failed:
        mov     si, offset msg_disk

# Print the NUL-terminated message at DS:SI (DS is 0 wherever this is reached) on the
# screen and COM1 (a write to a port with no UART behind it is harmless), wait five
# seconds and reset: the record counts the attempt, so a slot that fails this way is left
# after MAX_ATTEMPTS boots (a trial was already marked TRIED).
fail:
        xor     bx, bx                  # page 0
        mov     ah, 0x0e
        mov     dx, 0x3f8               # and the first serial port, for headless machines
1:      lodsb
        test    al, al
        jz      2f
        out     dx, al
        int     0x10
        jmp     1b
2:      mov     ah, 0x86                # wait CX:DX microseconds
        mov     cx, 5000000 >> 16
        mov     dx, 5000000 & 0xffff
        int     0x15
        mov     al, 0xfe                # pulse the reset line (keyboard controller)
        out     0x64, al
        hlt

msg_disk:       .asciz "rustkrazy: disk error\r\n"

# GDT; the null descriptor doubles as the pointer LGDT loads (limit, base).
gdt:            .word 15
                .long gdt
                .word 0
                .quad 0x00cf92000000ffff  # data, base 0, limit 4 GiB, writable

# Filled in by imgtool mkimg (boot::mbr::Table): slot A (partition 2), slot B (partition 3).
        .org 420
stage2_lba:     .long 0
kernel_lba:     .long 0, 0
cmdline_lba:    .long 0, 0

# ---------------------------------------------------------------------------------------
# Second stage, at 0x8000 (file offset 0x400; on the disk at STAGE2_LBA).
        .org 0x400
stage2:
        # Both record copies; BP = the newest valid one, 0 if none.
        xor     bp, bp
        mov     [DAMAGED], bp
        mov     si, COPY0
        mov     eax, COPY0_LBA
        call    copy_valid
        jne     1f
        mov     bp, si
        jmp     2f
1:      or      byte ptr [DAMAGED], 2   # flag: copy 1 damaged (and written over below)
2:      mov     si, COPY1
        mov     eax, COPY1_LBA
        call    copy_valid
        je      3f
        or      byte ptr [DAMAGED], 4   # flag: copy 2 damaged
        jmp     5f
3:      test    bp, bp
        jz      4f
        mov     eax, [COPY1 + 4]        # both valid: copy 1 if its sequence is ahead
        sub     eax, [COPY0 + 4]
        test    eax, eax
        jle     5f
4:      mov     bp, si
5:
        # EDI = the partition number to boot; 0 (no valid copy) boots slot A.
        xor     edi, edi
        test    bp, bp
        jz      have_slot
        mov     al, [bp + 8]            # state
        cmp     al, 1
        jne     1f
        inc     byte ptr [bp + 8]       # TRY -> TRIED, boot the trial slot
        mov     di, [bp + 10]
        jmp     save
1:      mov     di, [bp + 9]            # the committed slot (low byte)
        cmp     byte ptr [bp + 11], MAX_ATTEMPTS
        jae     1f
        inc     byte ptr [bp + 11]      # count this boot of it
        jmp     save
1:      test    al, al                  # out of attempts: fall back only from COMMITTED,
        jnz     have_slot
        test    byte ptr [bp + 12], 8   # to a slot the record allows,
        jz      have_slot
        movzx   si, byte ptr [bp + 10]  # whose trailer is there
        shl     si, 4
        mov     cx, 1
        mov     eax, [si + PARTITIONS - 16 + 8]         # partition start
        add     eax, [si + PARTITIONS - 16 + 12]        # + sectors
        dec     eax                     # its last sector
        mov     bx, TRAILER >> 4
        call    try_read
        jc      have_slot
        cmp     dword ptr [TRAILER], 0x4c534b52         # "RKSL"
        jne     have_slot
        cmp     dword ptr [TRAILER + 4], 0x3230544f     # "OT02"
        jne     have_slot
        mov     ax, [bp + 9]            # swap committed and trial
        xchg    al, ah
        mov     [bp + 9], ax
        mov     byte ptr [bp + 11], 1   # attempts 1
        and     byte ptr [bp + 12], 0xf7                # never back to the slot given up,
        or      byte ptr [bp + 12], 1                   # and say it fell back
        mov     di, ax
save:
        # The changed record, one step further, over the other copy, saying which copies
        # were damaged (init reports it).
        mov     al, [DAMAGED]
        or      [bp + 12], al
        inc     dword ptr [bp + 4]
        mov     si, bp
        mov     cx, 508
        call    crc
        not     edx
        mov     [bp + 508], edx
        mov     eax, COPY1_LBA
        cmp     bp, COPY0
        je      1f
        mov     eax, COPY0_LBA
1:      mov     bx, bp
        shr     bx, 4
        mov     cx, 1
        call    write                   # a failure leaves this boot uncounted
have_slot:
        mov     edx, edi
        and     edx, 1                  # partition 2 -> index 0, 3 -> index 1

        # Command line: one sector to CMDLINE_SEG:0 (NUL-terminated on disk, see above).
        mov     eax, [cmdline_lba + edx * 4]
        mov     cl, 1
        mov     bx, CMDLINE_SEG
        call    read

        # Kernel: 64 sectors cover the boot sector and the largest real-mode setup.
        mov     eax, [kernel_lba + edx * 4]
        mov     cl, 64
        mov     bx, SETUP_SEG
        mov     es, bx
        call    read
        mov     si, offset msg_kernel
        cmp     dword ptr es:[0x202], 0x53726448    # "HdrS"
        jne     fail
        test    byte ptr es:[0x211], 1  # LOADED_HIGH: a bzImage
        jz      fail
        cmp     word ptr es:[0x206], 0x0204          # 32-bit syssize needs protocol 2.04
        jb      fail

        # Setup header fields a boot loader fills in.
        mov     word ptr es:[0x210], 0x81ff        # type_of_loader 0xff; loadflags LOADED_HIGH|CAN_USE_HEAP
        mov     word ptr es:[0x224], 0xde00        # heap_end_ptr
        mov     dword ptr es:[0x228], 0x1e000      # cmd_line_ptr

        # Protected-mode part, after setup_sects + 1 sectors, syssize 16-byte paragraphs
        # long: through the bounce buffer to 1 MiB, chunk by chunk.
        mov     cl, es:[0x1f1]
        inc     cx
        add     eax, ecx                # next LBA
        mov     ebp, es:[0x1f4]
        add     ebp, 31
        shr     ebp, 5                  # sectors left
        mov     edi, 0x100000           # destination
load:
        mov     cx, CHUNK_SECTORS
        cmp     ebp, ecx
        jae     1f
        mov     cx, bp
1:      jcxz    boot
        mov     bx, BOUNCE_SEG
        call    read
        add     eax, ecx
        sub     ebp, ecx
        shl     ecx, 7                  # sectors -> dwords
        mov     esi, BOUNCE_SEG << 4

        # Unreal mode: protected mode just long enough to give DS and ES a 4 GiB limit
        # with base 0 (the limits stay cached back in real mode). Redone for every chunk,
        # since a BIOS call may reset them.
        cli
        lgdt    [gdt]
        mov     edx, cr0
        inc     dx                      # PE is 0 in real mode: set it
        mov     cr0, edx
        jmp     2f
2:      mov     bx, 8
        mov     ds, bx
        mov     es, bx
        dec     dx                      # clear PE
        mov     cr0, edx
        xor     bx, bx
        mov     ds, bx
        mov     es, bx
        sti
        addr32  rep movsd               # DS:ESI -> ES:EDI
        jmp     load

boot:
        # Real-mode entry: segments at the setup, stack at the top of the heap, IRQs off.
        cli
        mov     ax, SETUP_SEG
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0xe000
        ljmp    SETUP_SEG + 0x20, 0


# Reads the record copy at LBA EAX to SI (a multiple of 16) and checks it as
# Record::decode does: ZF set if valid. Magic and version; the CRC-32 over the whole sector
# (the stored CRC included) leaves zlib's residue; state 0 to 2; both slots 2 or 3. An
# unreadable copy is not valid. Keeps SI.
copy_valid:
        mov     bx, si
        shr     bx, 4
        mov     cx, 1
        call    try_read
        jc      1f
        cmp     dword ptr [si], 0x02424b52              # "RKB", version 2
        jne     2f
        push    si
        mov     cx, 512
        call    crc
        pop     si
        cmp     edx, 0xdebb20e3
        jne     2f
        cmp     byte ptr [si + 8], 2
        ja      1f
        mov     ax, [si + 9]
        and     ax, 0xfefe
        cmp     ax, 0x0202
        ret
1:      test    sp, sp                  # ZF clear
2:      ret

# CRC-32 register (zlib's, not inverted at the end) over CX bytes at SI, in EDX.
crc:
        or      edx, -1
1:      lodsb
        xor     dl, al
        mov     ah, 8
2:      shr     edx, 1
        jnc     3f
        xor     edx, 0xedb88320
3:      dec     ah
        jnz     2b
        loop    1b
        ret

msg_kernel:     .asciz "rustkrazy: not a bzImage\r\n"     # also: boot protocol older than 2.04

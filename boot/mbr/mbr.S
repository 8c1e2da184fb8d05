# rustkrazy x86 MBR boot code: loads a Linux bzImage straight from the FAT boot partition,
# with no bootloader files, following the Linux x86 boot protocol (Documentation/arch/x86/
# boot.rst), and implements a one-shot trial boot.
#
# The BIOS loads this sector at 0x7c00 and jumps here with DL = boot drive. The code must fit
# the 440 bytes before the disk signature; `imgtool mkimg` fills the table at offset 424 with
# where each root slot's kernel and cmdline files lie (contiguous regions of the FAT
# partition, allocated once at mkimg time: an update rewrites their bytes, never their
# place). A slot is kernel + cmdline + root, chosen together by the record. The kernel's own
# header says how long it is (setup_sects and syssize), so nothing here changes on update.
#
# Memory used (all below 640 KiB, addresses linear):
#   0x07c00  this code            0x07e00  boot record sector
#   0x10000  kernel setup (real-mode part), heap up to 0x1de00, stack top 0x1e000
#   0x1e000  kernel command line  0x20000  bounce buffer for the protected-mode part
#   0x100000 protected-mode kernel, copied up from the bounce buffer in unreal mode
#
# Boot record (sector 1, format in boot/src/record.rs): "RKB" + version 1, state
# (0 committed, 1 try, 2 tried), committed slot, trial slot (partition numbers 2 or 3),
# checksum making the first 16 bytes sum to 0 mod 256. On TRY the code writes TRIED back
# (one sector, through the BIOS) before booting the trial slot once; any other valid record
# boots the committed slot; an invalid one boots slot A (root A with kernel A).
#
# Each cmdline file is at most 511 bytes and imgtool zeroes the rest of its sector, so the
# sector read is NUL-terminated as the kernel expects.
#
# Assemble with boot/mbr/assemble.sh (GNU as + ld from binutils).

        .intel_syntax noprefix
        .code16
        .text
        .globl _start

        .set RECORD_LBA, 1
        .set RECORD, 0x7e00
        .set SETUP_SEG, 0x1000
        .set CMDLINE_SEG, 0x1e00
        .set BOUNCE_SEG, 0x2000
        .set CHUNK_SECTORS, 64          # 32 KiB per BIOS read
        .set DRIVE, 0x0600              # scratch: BIOS drive number
        .set OP, 0x0601                 # scratch: INT 13h function for disk

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

        # Read the boot record.
        mov     bx, RECORD >> 4
        xor     eax, eax
        inc     ax                      # EAX = RECORD_LBA
        mov     cx, ax
        call    read

        # Valid record? Magic and version, then checksum. EDX = slot; 0 boots root A.
        xor     edx, edx
        cmp     dword ptr [RECORD], 0x01424b52      # "RKB", version 1
        jne     have_slot
        mov     si, RECORD
        mov     cl, 16
sum:
        lodsb
        add     ah, al
        loop    sum
        jnz     have_slot               # flags of the last ADD: sum != 0
        inc     cx                      # CX = 1 again (it is 0 after LOOP)
        mov     ax, cx                  # EAX = RECORD_LBA again (LODSB used AL, ADD AH)

        # TRY: mark TRIED (state +1, checksum -1), write it back, then boot the trial slot.
        mov     dl, [RECORD + 6]        # committed slot
        cmp     byte ptr [RECORD + 5], 1
        jne     have_slot
        inc     byte ptr [RECORD + 5]
        dec     byte ptr [RECORD + 8]
        call    write                   # EAX, CX, BX address the record
        mov     dl, [RECORD + 7]        # trial slot
have_slot:
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

# Disk access by LBA (INT 13h extensions). EAX = LBA, CX = sectors, BX = segment (offset 0).
# Preserves all registers; on failure prints a message and halts.
write:
        mov     byte ptr [OP], 0x43
        jmp     disk
read:
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
        popad
        jc      disk_failed
        ret
disk_failed:
        mov     si, offset msg_disk

# Print the NUL-terminated message at DS:SI (DS is 0 wherever this is reached) and wait:
# no reboot loop.
fail:
        xor     bx, bx                  # page 0
        mov     ah, 0x0e
1:      lodsb
        test    al, al
        jz      halt
        int     0x10
        jmp     1b
halt:
        hlt
        jmp     halt

msg_disk:       .asciz "disk error"
msg_kernel:     .asciz "not bzImage"            # also: boot protocol older than 2.04

# GDT; the null descriptor doubles as the pointer LGDT loads (limit, base).
gdt:            .word 15
                .long gdt
                .word 0
                .quad 0x00cf92000000ffff  # data, base 0, limit 4 GiB, writable

# Filled in by imgtool mkimg (boot::mbr::Table): slot A (partition 2), slot B (partition 3).
        .org 424
kernel_lba:     .long 0, 0
cmdline_lba:    .long 0, 0

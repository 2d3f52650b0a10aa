/* A stand-in for Windows' bcryptprimitives.dll, for running the Windows build under Wine 8 only.
 *
 * Rust's standard library gets random numbers from ProcessPrng in bcryptprimitives.dll, which
 * Windows 10 and later have and Wine 8 lacks; without it the program cannot start under Wine.
 * This DLL fills the buffer from RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * It is never shipped: real Windows has the real DLL. Built by scripts/wine-tests.sh with
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

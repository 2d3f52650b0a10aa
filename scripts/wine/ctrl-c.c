/* ctrl-c.exe COMMAND-LINE: presses Ctrl-C in a console for the Wine tests.
 *
 * Starts COMMAND-LINE on this console, waits until a file named `press-ctrl-c` appears in the
 * working directory (the test creates it once the program is busy), sends Ctrl-C to the
 * console as a user at the keyboard would, then waits for the program and exits with its exit
 * code: 200 when it could not be started, 201 when it ended before Ctrl-C, 202 when Ctrl-C
 * could not be sent, 203 when it did not end within 60 s of it. Run under a terminal (the
 * tests use `script`) so that Wine gives the programs a console. Test-only, never shipped.
 */
#include <windows.h>
#include <stdio.h>

int wmain(int argc, wchar_t **argv)
{
    STARTUPINFOW startup = { sizeof startup };
    PROCESS_INFORMATION child;
    DWORD code = 203;

    if (argc != 2)
        return 200;
    if (!CreateProcessW(NULL, argv[1], NULL, NULL, TRUE, 0, NULL, NULL, &startup, &child)) {
        fprintf(stderr, "ctrl-c: cannot start the program: error %lu\n", GetLastError());
        return 200;
    }
    /* Only after the start: the program must not inherit "ignore Ctrl-C". */
    SetConsoleCtrlHandler(NULL, TRUE);
    while (GetFileAttributesW(L"press-ctrl-c") == INVALID_FILE_ATTRIBUTES) {
        if (WaitForSingleObject(child.hProcess, 50) != WAIT_TIMEOUT)
            return 201;
    }
    if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) {
        fprintf(stderr, "ctrl-c: cannot send Ctrl-C: error %lu\n", GetLastError());
        TerminateProcess(child.hProcess, 202);
        return 202;
    }
    if (WaitForSingleObject(child.hProcess, 60000) != WAIT_OBJECT_0) {
        TerminateProcess(child.hProcess, 203);
        return 203;
    }
    GetExitCodeProcess(child.hProcess, &code);
    return (int)code;
}

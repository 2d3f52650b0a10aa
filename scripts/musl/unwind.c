/* libunwind for the static Linux (musl) build: a stack walk that finds no frames.
 *
 * Rust's standard library for musl links libunwind, which a standard library built from
 * source here (scripts/cross.sh) does not come with, and gcc's own unwinder needs a glibc-only
 * function (_dl_find_object). Nothing in this program unwinds: panics abort (the release
 * profile), so the only callers are backtrace captures (std::backtrace, anyhow), which with
 * this library come out empty. The link names every function it needs, so a new caller fails
 * the build rather than the program.
 */
#include <stdint.h>

struct _Unwind_Context;
typedef int _Unwind_Reason_Code;
typedef _Unwind_Reason_Code (*_Unwind_Trace_Fn)(struct _Unwind_Context *, void *);

enum { URC_END_OF_STACK = 5 };

_Unwind_Reason_Code _Unwind_Backtrace(_Unwind_Trace_Fn trace, void *argument)
{
    (void)trace;
    (void)argument;
    return URC_END_OF_STACK;
}

/* Only ever called from inside a trace callback, which never runs. */
uintptr_t _Unwind_GetIP(struct _Unwind_Context *context)
{
    (void)context;
    return 0;
}

uintptr_t _Unwind_GetCFA(struct _Unwind_Context *context)
{
    (void)context;
    return 0;
}

void *_Unwind_FindEnclosingFunction(void *pc)
{
    (void)pc;
    return 0;
}

/* cmd_analyst_placeholder.c - PLACEHOLDER until `fbl report` and `fbl prune` land */
#include <stdio.h>
#include <sysexits.h>

#include "fbl/commands.h"

int fbl_cmd_report(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    fprintf(stderr, "fbl report: not available in this build yet\n");
    return EX_UNAVAILABLE;
}

int fbl_cmd_prune(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    fprintf(stderr, "fbl prune: not available in this build yet\n");
    return EX_UNAVAILABLE;
}
